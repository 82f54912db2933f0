package sftp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/crmsync/crmsync"
)

// Defaults for the Config fields left at zero.
const (
	DefaultPort        = 22
	DefaultDialTimeout = 10 * time.Second
	DefaultIOTimeout   = 30 * time.Second
	DefaultKeepAlive   = 15 * time.Second
	DefaultConcurrency = 64
)

// Config is the SFTP server a Target stores files on, as entered in the
// portal's External Storage settings.
type Config struct {
	// Host is the server's name or IP address. Required.
	Host string `yaml:"host"`
	// Port is the server's SSH port; 0 means 22.
	Port int `yaml:"port"`
	// User is the login name. Required.
	User string `yaml:"user"`
	// Password is tried (as password and keyboard-interactive
	// authentication) after PrivateKey. At least one of the two is required.
	Password crmsync.Secret `yaml:"password"`
	// PrivateKey is a PEM private key (OpenSSH, PKCS#8, PKCS#1 or SEC 1),
	// encrypted with Passphrase or not.
	PrivateKey crmsync.Secret `yaml:"private_key"`
	// Passphrase decrypts PrivateKey; ignored when the key is not encrypted.
	Passphrase crmsync.Secret `yaml:"passphrase"`
	// FolderPath is the folder on the server below which files are stored;
	// relative paths (and "~/...") start at the login directory, "" is the
	// login directory itself. It must exist: it is never created.
	FolderPath string `yaml:"folder_path"`

	// Exactly one of KnownHosts and HostKeyFingerprint is required, unless
	// TrustOnFirstUse is set.

	// KnownHosts is the text of known_hosts lines (as ssh-keyscan prints
	// them); only the lines for Host and Port are used. Hashed host names,
	// wildcards, negations and @revoked are understood; @cert-authority
	// lines are ignored.
	KnownHosts string `yaml:"known_hosts"`
	// HostKeyFingerprint is the SHA256 fingerprint of the server's host
	// key, as `ssh-keygen -lf` prints it ("SHA256:...").
	HostKeyFingerprint string `yaml:"host_key_fingerprint"`
	// TrustOnFirstUse accepts the first host key seen and remembers it (in
	// memory, for the life of the Target; it is logged once with its
	// fingerprint); a different key later is refused.
	TrustOnFirstUse bool `yaml:"trust_on_first_use"`

	// DialTimeout bounds the TCP connect; 0 means 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// IOTimeout is the longest any read or write on the connection may
	// stall before the connection is dropped; 0 means 30s.
	IOTimeout time.Duration `yaml:"io_timeout"`
	// KeepAlive is the interval between keepalive requests; 0 means 15s.
	// It is shortened to half of IOTimeout when longer, so that an idle
	// but healthy connection is not dropped.
	KeepAlive time.Duration `yaml:"keepalive"`
	// Concurrency is the number of write requests in flight per file;
	// 0 means 64.
	Concurrency int `yaml:"concurrency"`
}

// Validate reports the first field that is missing or wrong, by its YAML
// name. It parses the private key (so a wrong passphrase is caught here)
// and the known_hosts text, and never prints a secret.
func (c *Config) Validate() error {
	_, _, err := c.check()
	return err
}

// check validates c and returns what New needs from the parsing: the
// authentication methods and the host key checker. The key is decrypted
// once, here: with OpenSSH's bcrypt KDF that takes a noticeable time.
func (c *Config) check() ([]ssh.AuthMethod, *hostKeyChecker, error) {
	switch {
	case strings.TrimSpace(c.Host) == "":
		return nil, nil, errors.New("sftp: host: required")
	case strings.ContainsAny(c.Host, " \t\r\n/@"):
		return nil, nil, fmt.Errorf("sftp: host %q: want a host name or IP address", c.Host)
	case c.Port < 0 || c.Port > 65535:
		return nil, nil, fmt.Errorf("sftp: port %d: want 1-65535 (0 for 22)", c.Port)
	case c.User == "":
		return nil, nil, errors.New("sftp: user: required")
	case c.Password.IsZero() && c.PrivateKey.IsZero():
		return nil, nil, errors.New("sftp: password or private_key: one is required")
	case !c.Passphrase.IsZero() && c.PrivateKey.IsZero():
		return nil, nil, errors.New("sftp: passphrase: set without private_key")
	case strings.ContainsRune(c.FolderPath, 0):
		return nil, nil, errors.New("sftp: folder_path: contains a NUL byte")
	case c.DialTimeout < 0:
		return nil, nil, fmt.Errorf("sftp: dial_timeout %s: must not be negative", c.DialTimeout)
	case c.IOTimeout < 0:
		return nil, nil, fmt.Errorf("sftp: io_timeout %s: must not be negative", c.IOTimeout)
	case c.KeepAlive < 0:
		return nil, nil, fmt.Errorf("sftp: keepalive %s: must not be negative", c.KeepAlive)
	case c.Concurrency < 0:
		return nil, nil, fmt.Errorf("sftp: concurrency %d: must not be negative", c.Concurrency)
	}
	auth, err := c.authMethods()
	if err != nil {
		return nil, nil, err
	}
	pins := 0
	if strings.TrimSpace(c.KnownHosts) != "" {
		pins++
	}
	if strings.TrimSpace(c.HostKeyFingerprint) != "" {
		pins++
	}
	switch {
	case pins == 0 && !c.TrustOnFirstUse:
		return nil, nil, errors.New("sftp: known_hosts or host_key_fingerprint: one is required (or set trust_on_first_use)")
	case pins == 2:
		return nil, nil, errors.New("sftp: known_hosts and host_key_fingerprint: set only one")
	case pins == 1 && c.TrustOnFirstUse:
		return nil, nil, errors.New("sftp: trust_on_first_use: cannot be combined with known_hosts or host_key_fingerprint")
	}
	hostKeys, err := newHostKeyChecker(c.withDefaults())
	if err != nil {
		return nil, nil, err
	}
	return auth, hostKeys, nil
}

// withDefaults returns a copy with the zero fields set to their defaults.
func (c Config) withDefaults() Config {
	c.Host = strings.TrimSpace(c.Host)
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.KeepAlive > c.IOTimeout/2 {
		c.KeepAlive = c.IOTimeout / 2
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	// SFTP does not expand "~", but relative paths start at the login
	// directory anyway.
	if c.FolderPath == "~" {
		c.FolderPath = ""
	}
	if rest, ok := strings.CutPrefix(c.FolderPath, "~/"); ok {
		c.FolderPath = rest
	}
	if c.FolderPath != "" {
		c.FolderPath = path.Clean(c.FolderPath)
	}
	return c
}

// addr is host:port, bracketed for IPv6.
func (c Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// LogValue lists the settings without the secrets, only whether each is
// set.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("user", c.User),
		slog.Bool("password", !c.Password.IsZero()),
		slog.Bool("private_key", !c.PrivateKey.IsZero()),
		slog.String("folder_path", c.FolderPath),
		slog.Bool("known_hosts", c.KnownHosts != ""),
		slog.String("host_key_fingerprint", c.HostKeyFingerprint),
		slog.Bool("trust_on_first_use", c.TrustOnFirstUse),
	)
}

// authMethods returns the key first (servers usually allow it without
// delay), then the password both ways servers ask for it.
func (c Config) authMethods() ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if !c.PrivateKey.IsZero() {
		signer, err := parsePrivateKey(c.PrivateKey, c.Passphrase)
		if err != nil {
			return nil, err
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if !c.Password.IsZero() {
		pw := c.Password
		methods = append(methods,
			ssh.Password(pw.Reveal()),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// Servers that take passwords this way ask one question
				// without echo; anything else is not ours to answer.
				answers := make([]string, len(questions))
				for i := range questions {
					if echos[i] {
						return nil, errors.New("sftp: keyboard-interactive question other than a password")
					}
					answers[i] = pw.Reveal()
				}
				return answers, nil
			}),
		)
	}
	return methods, nil
}
