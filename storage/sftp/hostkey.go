package sftp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/crmsync/crmsync/storage"
)

// hostKeyChecker decides whether the key a server presents is the one
// configured: pinned by known_hosts lines, by fingerprint, or remembered
// from the first connection.
type hostKeyChecker struct {
	addr string // as known_hosts names it: host, or [host]:port

	known       []ssh.PublicKey // from known_hosts, for this host
	revoked     []ssh.PublicKey
	fingerprint string // SHA256:..., when pinned by fingerprint
	tofu        bool

	mu    sync.Mutex
	first ssh.PublicKey // remembered by trust on first use
}

func newHostKeyChecker(cfg Config) (*hostKeyChecker, error) {
	h := &hostKeyChecker{
		addr: knownhosts.Normalize(cfg.addr()),
		tofu: cfg.TrustOnFirstUse,
	}
	if fp := strings.TrimSpace(cfg.HostKeyFingerprint); fp != "" {
		parsed, err := parseFingerprint(fp)
		if err != nil {
			return nil, err
		}
		h.fingerprint = parsed
	}
	if strings.TrimSpace(cfg.KnownHosts) != "" {
		if err := h.parseKnownHosts(cfg.KnownHosts); err != nil {
			return nil, err
		}
		if len(h.known) == 0 {
			return nil, fmt.Errorf("sftp: known_hosts: no line for %s (run `ssh-keyscan -p %d %s` and check the keys it prints)", h.addr, cfg.Port, cfg.Host)
		}
	}
	return h, nil
}

// parseFingerprint accepts "SHA256:..." alone or a whole `ssh-keygen -lf`
// line ("256 SHA256:... comment (ED25519)").
func parseFingerprint(s string) (string, error) {
	for f := range strings.FieldsSeq(s) {
		if rest, ok := strings.CutPrefix(f, "SHA256:"); ok {
			sum, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
			if err != nil || len(sum) != 32 {
				return "", fmt.Errorf("sftp: host_key_fingerprint %q: not a SHA256 fingerprint", f)
			}
			return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum), nil
		}
	}
	return "", fmt.Errorf("sftp: host_key_fingerprint %q: want SHA256:... as `ssh-keygen -lf` prints it", s)
}

func (h *hostKeyChecker) parseKnownHosts(text string) error {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(line))
		if err != nil {
			return fmt.Errorf("sftp: known_hosts: line %d: %w", i+1, err)
		}
		if marker == "cert-authority" || !h.matches(hosts) {
			continue
		}
		if marker == "revoked" {
			h.revoked = append(h.revoked, key)
		} else {
			h.known = append(h.known, key)
		}
	}
	return nil
}

// matches applies OpenSSH's host pattern rules: a host matches when one
// pattern matches it and no negated pattern does.
func (h *hostKeyChecker) matches(patterns []string) bool {
	matched := false
	for _, p := range patterns {
		negated := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var ok bool
		if strings.HasPrefix(p, "|1|") {
			ok = hashedMatch(p, h.addr)
		} else {
			ok = wildcardMatch(strings.ToLower(p), strings.ToLower(h.addr))
		}
		if ok && negated {
			return false
		}
		matched = matched || ok
	}
	return matched
}

// hashedMatch checks a HashKnownHosts entry: |1|base64(salt)|base64(HMAC-SHA1(salt, host)).
func hashedMatch(pattern, host string) bool {
	parts := strings.Split(pattern, "|")
	if len(parts) != 4 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[2])
	sum, err2 := base64.StdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	mac := hmac.New(sha1.New, salt)
	mac.Write([]byte(host))
	return hmac.Equal(mac.Sum(nil), sum)
}

// wildcardMatch matches s against a pattern of literal bytes, '*' (any
// run) and '?' (any one byte).
func wildcardMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcardMatch(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// algorithms returns the host key algorithms to offer: those of the known
// keys, so that the server presents one of them rather than another of
// its keys; nil means x/crypto's defaults.
func (h *hostKeyChecker) algorithms() []string {
	var algos []string
	for _, k := range h.known {
		for _, a := range algorithmsFor(k.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// algorithmsFor maps a key type to the signature algorithms that present
// it.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}

// plainHostKeyAlgorithms are x/crypto's secure host key algorithms
// without the certificate ones (no certificate authority is configured).
func plainHostKeyAlgorithms() []string {
	return slices.DeleteFunc(ssh.SupportedAlgorithms().HostKeys, func(a string) bool {
		return strings.Contains(a, "-cert-")
	})
}

// check is the ssh.HostKeyCallback.
func (h *hostKeyChecker) check(log *slog.Logger) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got := ssh.FingerprintSHA256(key)
		mismatch := func(want []string, fix string) error {
			return &hostKeyError{addr: h.addr, want: want, got: []string{key.Type() + " " + got}, fix: fix}
		}
		for _, r := range h.revoked {
			if keyEqual(r, key) {
				return mismatch(nil, "the key is marked @revoked in known_hosts")
			}
		}
		switch {
		case len(h.known) > 0:
			want := make([]string, 0, len(h.known))
			for _, k := range h.known {
				if keyEqual(k, key) {
					return nil
				}
				want = append(want, k.Type()+" "+ssh.FingerprintSHA256(k))
			}
			return mismatch(want, "if the server's key was changed on purpose (check with its administrator), add this line to known_hosts: "+
				knownhosts.Line([]string{h.addr}, key))
		case h.fingerprint != "":
			if got == h.fingerprint {
				return nil
			}
			return mismatch([]string{h.fingerprint}, fmt.Sprintf("if the server's key was changed on purpose (check with its administrator), set host_key_fingerprint: %q", got))
		case h.tofu:
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.first == nil {
				h.first = key
				log.Warn("sftp: trusting the server's host key on first use; pin it with host_key_fingerprint",
					"addr", h.addr, "key_type", key.Type(), "fingerprint", got)
				return nil
			}
			if keyEqual(h.first, key) {
				return nil
			}
			return mismatch([]string{h.first.Type() + " " + ssh.FingerprintSHA256(h.first) + " (trusted on first use)"},
				"restart to trust the new key, or better, pin the right one with host_key_fingerprint")
		}
		return mismatch(nil, "configure known_hosts or host_key_fingerprint")
	}
}

func keyEqual(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// hostKeyError says which key was expected, which ones the server
// presented, and what to put in the config.
type hostKeyError struct {
	addr string
	want []string // "type SHA256:..."
	got  []string // "type SHA256:...", one per key type the server was asked for
	fix  string
}

func (e *hostKeyError) Error() string {
	want := "no key"
	if len(e.want) > 0 {
		want = strings.Join(e.want, " or ")
	}
	return fmt.Sprintf("sftp: host key of %s does not match: expected %s, the server presented %s; %s",
		e.addr, want, strings.Join(e.got, " and "), e.fix)
}

func (e *hostKeyError) Unwrap() error { return storage.ErrHostKey }
