package sftp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
	"golang.org/x/crypto/ssh"

	"github.com/crmsync/crmsync"
)

// parsePrivateKey turns the configured PEM key into a signer. Its errors
// name the field at fault and never quote the key or the passphrase.
func parsePrivateKey(key, passphrase crmsync.Secret) (ssh.Signer, error) {
	pemBytes := []byte(key.Reveal())
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("sftp: private_key: not a PEM private key (-----BEGIN ... PRIVATE KEY-----)")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		// x/crypto/ssh reads every other format but not encrypted PKCS#8,
		// which `openssl genpkey -aes256` and `ssh-keygen -m PKCS8` write.
		if passphrase.IsZero() {
			return nil, errors.New("sftp: passphrase: required, private_key is encrypted")
		}
		raw, err := decryptPKCS8(block.Bytes, []byte(passphrase.Reveal()))
		if err != nil {
			return nil, err
		}
		signer, err := ssh.NewSignerFromKey(raw)
		if err != nil {
			return nil, fmt.Errorf("sftp: private_key: %w", err)
		}
		return signer, nil
	}

	signer, err := ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case !errors.As(err, &missing):
		return nil, fmt.Errorf("sftp: private_key: %w", err)
	case passphrase.IsZero():
		return nil, errors.New("sftp: passphrase: required, private_key is encrypted")
	}
	signer, err = ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(passphrase.Reveal()))
	switch {
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, errors.New("sftp: passphrase: does not decrypt private_key")
	case err != nil:
		return nil, fmt.Errorf("sftp: private_key: %w", err)
	}
	return signer, nil
}

// PKCS#5 v2 (RFC 8018) and scrypt (RFC 7914) identifiers.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt        []byte
	Cost        int
	BlockSize   int
	Parallelism int
	KeyLength   int `asn1:"optional"`
}

// decryptPKCS8 decrypts a PBES2-encrypted PKCS#8 key (PBKDF2 or scrypt;
// AES-CBC or 3DES-CBC) and parses it.
func decryptPKCS8(der, passphrase []byte) (any, error) {
	unsupported := func(what string) error {
		return fmt.Errorf("sftp: private_key: encrypted PKCS#8 with unsupported %s; re-encrypt it with `ssh-keygen -p` (OpenSSH format)", what)
	}
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, fmt.Errorf("sftp: private_key: malformed encrypted PKCS#8: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, unsupported("scheme " + info.Algo.Algorithm.String())
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("sftp: private_key: malformed PBES2 parameters: %w", err)
	}

	var newBlock func([]byte) (cipher.Block, error)
	var keyLen int
	switch s := params.Scheme.Algorithm; {
	case s.Equal(oidAES128CBC):
		newBlock, keyLen = aes.NewCipher, 16
	case s.Equal(oidAES192CBC):
		newBlock, keyLen = aes.NewCipher, 24
	case s.Equal(oidAES256CBC):
		newBlock, keyLen = aes.NewCipher, 32
	case s.Equal(oidDESEDE3CBC):
		newBlock, keyLen = des.NewTripleDESCipher, 24
	default:
		return nil, unsupported("cipher " + s.String())
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Scheme.Parameters.FullBytes, &iv); err != nil {
		return nil, fmt.Errorf("sftp: private_key: malformed cipher parameters: %w", err)
	}

	var key []byte
	switch k := params.KDF.Algorithm; {
	case k.Equal(oidPBKDF2):
		var p pbkdf2Params
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("sftp: private_key: malformed PBKDF2 parameters: %w", err)
		}
		var h func() hash.Hash
		switch prf := p.PRF.Algorithm; {
		case len(prf) == 0, prf.Equal(oidHMACSHA1):
			h = sha1.New
		case prf.Equal(oidHMACSHA224):
			h = sha256.New224
		case prf.Equal(oidHMACSHA256):
			h = sha256.New
		case prf.Equal(oidHMACSHA384):
			h = sha512.New384
		case prf.Equal(oidHMACSHA512):
			h = sha512.New
		default:
			return nil, unsupported("PBKDF2 hash " + prf.String())
		}
		var err error
		if key, err = pbkdf2.Key(h, string(passphrase), p.Salt, p.Iterations, keyLen); err != nil {
			return nil, fmt.Errorf("sftp: private_key: PBKDF2: %w", err)
		}
	case k.Equal(oidScrypt):
		var p scryptParams
		if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("sftp: private_key: malformed scrypt parameters: %w", err)
		}
		var err error
		if key, err = scrypt.Key(passphrase, p.Salt, p.Cost, p.BlockSize, p.Parallelism, keyLen); err != nil {
			return nil, fmt.Errorf("sftp: private_key: scrypt: %w", err)
		}
	default:
		return nil, unsupported("key derivation " + k.String())
	}

	block, err := newBlock(key)
	if err != nil {
		return nil, fmt.Errorf("sftp: private_key: %w", err)
	}
	if len(iv) != block.BlockSize() || len(info.Data) == 0 || len(info.Data)%block.BlockSize() != 0 {
		return nil, errors.New("sftp: private_key: malformed encrypted PKCS#8 (length)")
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, info.Data)
	wrong := errors.New("sftp: passphrase: does not decrypt private_key")
	pad := int(plain[len(plain)-1])
	if pad == 0 || pad > block.BlockSize() || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, wrong
	}
	raw, err := x509.ParsePKCS8PrivateKey(plain[:len(plain)-pad])
	if err != nil {
		// Padding matches by chance about once in 256 wrong passphrases;
		// the key inside then does not parse.
		return nil, wrong
	}
	return raw, nil
}
