package configs

import (
	"fmt"
	"net/url"
	"time"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/routing"
)

// Pega makes crmsync Pega Customer Service's external routing system: Pega
// calls /pega/route and /pega/events, and crmsync hands Pega the chosen
// agent through its PostRoutingEvents service. Needs routing.enabled.
type Pega struct {
	Enabled bool `yaml:"enabled"`
	// Inbound is what Pega's calls to crmsync must present: bearer tokens,
	// basic auth, or both. At least one is required.
	Inbound PegaInbound `yaml:"inbound"`
	// Service is Pega's PostRoutingEvents service.
	Service PegaService `yaml:"service"`
	// Channel is the routing channel of Pega's conversations. Empty means
	// chat.
	Channel string `yaml:"channel"`
	// Capacity is how many conversations a CSR that Pega tells about takes
	// at once on Channel. Zero means 1.
	Capacity int `yaml:"capacity"`
}

// PegaInbound is what Pega's connectors must send.
type PegaInbound struct {
	BearerTokens []crmsync.Secret `yaml:"bearer_tokens"`
	Username     string           `yaml:"username"`
	Password     crmsync.Secret   `yaml:"password"`
}

// PegaService is how crmsync reaches Pega's service package. Exactly one of
// basic auth (username and password), a bearer token, or OAuth 2.0 client
// credentials.
type PegaService struct {
	// BaseURL is the instance's scheme, host and port, without /prweb.
	BaseURL string `yaml:"base_url"`
	// Timeout bounds one call. Zero means 10s.
	Timeout  time.Duration  `yaml:"timeout"`
	Username string         `yaml:"username"`
	Password crmsync.Secret `yaml:"password"`
	Token    crmsync.Secret `yaml:"token"`
	OAuth2   *PegaOAuth2    `yaml:"oauth2"`
}

// PegaOAuth2 is the client credentials grant with a client registered in
// Pega.
type PegaOAuth2 struct {
	// TokenURL is the token endpoint. Empty means Pega's default under
	// base_url.
	TokenURL     string         `yaml:"token_url"`
	ClientID     string         `yaml:"client_id"`
	ClientSecret crmsync.Secret `yaml:"client_secret"`
	Scopes       []string       `yaml:"scopes"`
}

// validatePega checks the section; the connector checks the service's
// details again when it is built.
func (c *Config) validatePega(ps *Problems) {
	p := &c.Pega
	if !p.Enabled {
		return
	}
	if !c.Routing.Enabled {
		ps.add("pega.enabled", "needs routing.enabled: Pega hands its routing to crmsync's engine")
	}
	in := p.Inbound
	if len(in.BearerTokens) == 0 && in.Username == "" {
		ps.add("pega.inbound", "give bearer_tokens or a username and password: Pega's calls must be authenticated")
	}
	for i, t := range in.BearerTokens {
		if len(t.Reveal()) < 8 {
			ps.add(fmt.Sprintf("pega.inbound.bearer_tokens[%d]", i), "a token must be at least 8 characters")
		}
	}
	if (in.Username == "") != in.Password.IsZero() {
		ps.add("pega.inbound", "username and password go together")
	}
	s := p.Service
	if u, err := url.Parse(s.BaseURL); s.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.add("pega.service.base_url", "want the instance's http(s)://host[:port], got %q", s.BaseURL)
	}
	kinds := 0
	if s.Username != "" || !s.Password.IsZero() {
		kinds++
		if s.Username == "" || s.Password.IsZero() {
			ps.add("pega.service", "username and password go together")
		}
	}
	if !s.Token.IsZero() {
		kinds++
	}
	if s.OAuth2 != nil {
		kinds++
		if s.OAuth2.ClientID == "" {
			ps.add("pega.service.oauth2.client_id", "required")
		}
		if s.OAuth2.ClientSecret.IsZero() {
			ps.add("pega.service.oauth2.client_secret", "required")
		}
	}
	if kinds != 1 {
		ps.add("pega.service", "give exactly one of username and password, token, or oauth2 (got %d)", kinds)
	}
	if s.Timeout < 0 || s.Timeout > time.Minute {
		ps.add("pega.service.timeout", "must be from 0 to 1m, got %s", s.Timeout)
	}
	if p.Channel == "" {
		p.Channel = "chat"
	} else if err := routing.ValidateID(p.Channel); err != nil {
		ps.add("pega.channel", "%s", err)
	}
	if p.Capacity == 0 {
		p.Capacity = 1
	} else if p.Capacity < 0 || p.Capacity > 100 {
		ps.add("pega.capacity", "must be from 1 to 100")
	}
}
