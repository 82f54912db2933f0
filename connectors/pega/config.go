package pega

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
)

// Path is where Pega serves PostRoutingEvents, under the base URL.
const Path = "/prweb/api/ConversationRouting/V1/PostRoutingEvents"

// DefaultTokenPath is Pega's OAuth 2.0 token endpoint, under the base URL;
// OAuth2.TokenURL defaults to it.
const DefaultTokenPath = "/prweb/PRRestService/oauth2/v1/token"

// DefaultTimeout bounds one call when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes caps how much of an answer is read. Pega answers a
// one-field object.
const MaxResponseBytes = 64 << 10

// Config is how to reach a Pega instance's PostRoutingEvents service.
type Config struct {
	// BaseURL is the instance's scheme, host and port, without /prweb: for
	// an instance at http://10.225.93.236:9080/prweb/app/ it is
	// http://10.225.93.236:9080. A path in front of /prweb (a proxy's) is
	// kept. Credentials, a query or a fragment are refused.
	BaseURL string
	// Timeout bounds one call, token request included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Auth is how crmsync authenticates to Pega's service package.
	Auth Auth
	// HTTPClient sends the requests; nil means http.DefaultTransport. Its
	// own Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
}

// Auth is one of: basic (Username and Password), a bearer Token, or OAuth
// 2.0 client credentials (OAuth2), whichever the service package in Pega
// expects. Exactly one must be set.
type Auth struct {
	Username string
	Password crmsync.Secret
	Token    crmsync.Secret
	OAuth2   *OAuth2
}

// OAuth2 is the client credentials grant, with a client registered in
// Pega (an OAuth 2.0 client registration).
type OAuth2 struct {
	// TokenURL is the token endpoint; "" means BaseURL + DefaultTokenPath.
	TokenURL     string
	ClientID     string
	ClientSecret crmsync.Secret
	// Scopes are asked for; empty means none.
	Scopes []string
}

// check validates cfg and returns the service's URL and the token URL.
func (cfg *Config) check() (endpoint, tokenURL string, err error) {
	base, err := checkURL("base_url", cfg.BaseURL)
	if err != nil {
		return "", "", err
	}
	if strings.Contains(base.Path+"/", "/prweb/") {
		return "", "", crmsync.Errorf(crmsync.EINVALID, "base_url", "must end before /prweb (for an instance at http://host:9080/prweb/app/ it is http://host:9080)")
	}
	root := strings.TrimSuffix(base.String(), "/")
	if cfg.Timeout < 0 {
		return "", "", crmsync.Errorf(crmsync.EINVALID, "timeout", "must not be negative")
	}
	a := cfg.Auth
	n := 0
	if a.Username != "" || !a.Password.IsZero() {
		n++
		if a.Username == "" {
			return "", "", crmsync.Errorf(crmsync.EINVALID, "auth.username", "is required with a password")
		}
		if a.Password.IsZero() {
			return "", "", crmsync.Errorf(crmsync.EINVALID, "auth.password", "is required with a username")
		}
		if strings.Contains(a.Username, ":") {
			return "", "", crmsync.Errorf(crmsync.EINVALID, "auth.username", "must not contain ':' (basic auth cannot carry it)")
		}
	}
	if !a.Token.IsZero() {
		n++
	}
	if o := a.OAuth2; o != nil {
		n++
		switch {
		case o.ClientID == "":
			return "", "", crmsync.Errorf(crmsync.EINVALID, "auth.oauth2.client_id", "is required")
		case o.ClientSecret.IsZero():
			return "", "", crmsync.Errorf(crmsync.EINVALID, "auth.oauth2.client_secret", "is required")
		}
		tokenURL = root + DefaultTokenPath
		if o.TokenURL != "" {
			u, err := checkURL("auth.oauth2.token_url", o.TokenURL)
			if err != nil {
				return "", "", err
			}
			tokenURL = u.String()
		}
	}
	switch n {
	case 0:
		return "", "", crmsync.Errorf(crmsync.EINVALID, "auth", "give a username and password, a token or oauth2: Pega's service must not be called unauthenticated")
	case 1:
	default:
		return "", "", crmsync.Errorf(crmsync.EINVALID, "auth", "give only one of username and password, token, oauth2")
	}
	return root + Path, tokenURL, nil
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
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not carry credentials; put them in auth")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not have a query")
	case u.Fragment != "":
		return nil, crmsync.Errorf(crmsync.EINVALID, field, "must not have a fragment")
	}
	return u, nil
}
