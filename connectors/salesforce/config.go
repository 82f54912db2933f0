package salesforce

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httperr"
)

// Path is where the route API is served, under the base URL. The vendor
// names the resource v1/route; it lives under the Interaction Service's
// /api root.
const Path = "/api/v1/route"

// DefaultAudience is the JWT's aud when Config.Audience is empty: the
// production login host. Sandboxes use https://test.salesforce.com.
const DefaultAudience = "https://login.salesforce.com"

// DefaultTimeout bounds one call when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// DefaultTokenLifetime is how long a signed JWT is valid when
// Config.TokenLifetime is 0. Salesforce refuses assertions that live
// longer than a few minutes.
const DefaultTokenLifetime = 3 * time.Minute

// MaxTokenLifetime is the longest Config.TokenLifetime accepted.
const MaxTokenLifetime = 5 * time.Minute

// MaxResponseBytes caps how much of an answer is read.
const MaxResponseBytes = 64 << 10

// MinKeyBits is the smallest RSA key accepted.
const MinKeyBits = 2048

// Config is how to reach an org's route API and sign for it.
type Config struct {
	// BaseURL is the Interaction Service host, such as
	// https://acme.my.salesforce-scrt.com, without /api. A path in front
	// (a proxy's) is kept. Credentials, a query or a fragment are refused.
	BaseURL string
	// OrgID is the org's 15-character id (sent as the OrgId header).
	OrgID string
	// AuthorizationContext is the conversation channel definition's
	// developer name, {prefix}_{name}, such as Partner1_ChannelDefinition1.
	AuthorizationContext string
	// ClientID is the connected app's consumer key (the JWT's iss).
	ClientID string
	// Subject is the Salesforce username the JWT is issued for (sub).
	Subject string
	// Audience is the JWT's aud. Zero: DefaultAudience.
	Audience string
	// PrivateKey is the connected app's RSA private key, PEM (PKCS #1 or
	// PKCS #8, not encrypted), at least MinKeyBits bits.
	PrivateKey crmsync.Secret
	// Timeout bounds one call. Zero: DefaultTimeout.
	Timeout time.Duration
	// TokenLifetime is a signed JWT's life; one is reused until a third of
	// it is left. Zero: DefaultTokenLifetime; at most MaxTokenLifetime.
	TokenLifetime time.Duration
	// HTTPClient sends the requests. Zero: a client of its own.
	HTTPClient *http.Client `json:"-"`
	// Now is the clock the JWT's times come from. Zero: time.Now.
	Now func() time.Time `json:"-"`
}

// LogValue shows the settings without the key. crmsync.Secret already
// hides itself from fmt; this keeps slog's output short and plain too.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", c.BaseURL),
		slog.String("org_id", c.OrgID),
		slog.String("authorization_context", c.AuthorizationContext),
		slog.String("client_id", c.ClientID),
		slog.String("subject", c.Subject),
		slog.String("audience", c.Audience),
		slog.String("private_key", c.PrivateKey.String()),
		slog.Duration("timeout", c.Timeout),
	)
}

// settings is a checked Config.
type settings struct {
	endpoint string
	cfg      Config
	key      *rsa.PrivateKey
}

// check validates cfg, fills in defaults and parses the key.
func (cfg Config) check() (settings, error) {
	base, err := checkURL("base_url", cfg.BaseURL)
	if err != nil {
		return settings{}, err
	}
	p := strings.TrimSuffix(base.Path, "/")
	if strings.HasSuffix(p, "/api") || strings.Contains(p+"/", "/v1/") {
		return settings{}, crmsync.Errorf(crmsync.EINVALID, "base_url", "must end before /api (for example https://acme.my.salesforce-scrt.com)")
	}
	if err := checkOrgID("org_id", cfg.OrgID); err != nil {
		return settings{}, err
	}
	if err := checkAuthContext(cfg.AuthorizationContext); err != nil {
		return settings{}, err
	}
	if err := checkText("client_id", cfg.ClientID, 256); err != nil {
		return settings{}, err
	}
	if err := checkText("subject", cfg.Subject, 256); err != nil {
		return settings{}, err
	}
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if _, err := checkURL("audience", cfg.Audience); err != nil {
		return settings{}, err
	}
	switch {
	case cfg.Timeout < 0:
		return settings{}, crmsync.Errorf(crmsync.EINVALID, "timeout", "must not be negative")
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.TokenLifetime < 0:
		return settings{}, crmsync.Errorf(crmsync.EINVALID, "token_lifetime", "must not be negative")
	case cfg.TokenLifetime == 0:
		cfg.TokenLifetime = DefaultTokenLifetime
	case cfg.TokenLifetime < 30*time.Second:
		return settings{}, crmsync.Errorf(crmsync.EINVALID, "token_lifetime", "must be at least 30s")
	case cfg.TokenLifetime > MaxTokenLifetime:
		return settings{}, crmsync.Errorf(crmsync.EINVALID, "token_lifetime", "must be at most %v", MaxTokenLifetime)
	}
	key, err := parseKey(cfg.PrivateKey)
	if err != nil {
		return settings{}, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	endpoint := strings.TrimSuffix(base.String(), "/") + Path
	return settings{endpoint: endpoint, cfg: cfg, key: key}, nil
}

// parseKey reads an RSA private key. No message quotes the PEM or what
// the x509 package said about it: both could carry key material.
func parseKey(s crmsync.Secret) (*rsa.PrivateKey, error) {
	const field = "private_key"
	if s.IsZero() {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is required")
	}
	block, _ := pem.Decode([]byte(strings.TrimSpace(s.Reveal())))
	if block == nil {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is not PEM")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is encrypted; give the key without a passphrase")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, crmsync.Errorf(crmsync.EINVALID, field, "is not a valid PKCS #1 RSA key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, crmsync.Errorf(crmsync.EINVALID, field, "is not a valid PKCS #8 key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, crmsync.Errorf(crmsync.EINVALID, field, "is not an RSA key (RS256 needs one)")
		}
		key = rk
	default:
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is a PEM block of type %q, want RSA PRIVATE KEY or PRIVATE KEY", httperr.Cut(block.Type, 40))
	}
	if key.N.BitLen() < MinKeyBits {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is %d bits, want at least %d", key.N.BitLen(), MinKeyBits)
	}
	return key, nil
}

// checkOrgID wants the 15-character org id.
func checkOrgID(field, s string) error {
	if s == "" {
		return crmsync.Errorf(crmsync.EINVALID, field, "is required")
	}
	if len(s) != 15 || !alnum(s) {
		return crmsync.Errorf(crmsync.EINVALID, field, "must be the 15-character org id (letters and digits; the first 15 of an 18-character id)")
	}
	return nil
}

// checkAuthContext wants {prefix}_{name}: a developer name holds letters,
// digits and underscores, starts with a letter, and here has a prefix.
func checkAuthContext(s string) error {
	const field = "authorization_context"
	if s == "" {
		return crmsync.Errorf(crmsync.EINVALID, field, "is required")
	}
	prefix, name, ok := strings.Cut(s, "_")
	if !ok || prefix == "" || name == "" || len(s) > 255 || !isLetter(s[0]) {
		return crmsync.Errorf(crmsync.EINVALID, field, "must be the channel definition's developer name as {prefix}_{name}, such as Partner1_ChannelDefinition1")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return crmsync.Errorf(crmsync.EINVALID, field, "may hold only letters, digits and underscores")
		}
	}
	return nil
}

// checkText wants a non-empty value without control characters.
func checkText(field, s string, max int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return crmsync.Errorf(crmsync.EINVALID, field, "is required")
	case len(s) > max:
		return crmsync.Errorf(crmsync.EINVALID, field, "is longer than %d bytes", max)
	case hasControl(s):
		return crmsync.Errorf(crmsync.EINVALID, field, "holds a control character")
	}
	return nil
}

// checkURL parses an http(s) URL that must carry no credentials, query or
// fragment. The URL is not repeated in errors, in case it holds a secret.
func checkURL(field, s string) (*url.URL, error) {
	if s == "" {
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is required")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must be an http or https URL")
	case u.Host == "":
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "has no host")
	case u.User != nil:
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not have a query")
	case u.Fragment != "":
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not have a fragment")
	}
	return u, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool  { return isLetter(c) || c >= '0' && c <= '9' }

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return s != ""
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
