// Package access says who a routing request comes from: the system (a
// contact center, Pega, an admin script holding one of the API tokens) or
// one agent (holding that agent's own token). Agents' browsers talk to the
// routing API and their event stream directly, so an agent's token must
// open that agent's doors and no one else's.
//
// Agent tokens are stateless: HMAC-SHA256 of the agent id under a secret
// from the config. Nothing is stored, any crmsync process can check one,
// and changing the secret revokes every token at once.
package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/crmsync/crmsync"
)

// tokenPrefix marks an agent token, so a log line or a support ticket
// shows at a glance which kind of credential was used (never its value).
const tokenPrefix = "agt_"

// MinSecretLen is the shortest secret AgentTokens accepts.
const MinSecretLen = 16

// Verifier checks an agent's token. AgentTokens is one.
type Verifier interface {
	Verify(token, agentID string) error
}

// AgentTokens issues and checks per-agent tokens.
type AgentTokens struct {
	secret []byte
}

// NewAgentTokens returns tokens signed with secret, which must be at least
// MinSecretLen bytes.
func NewAgentTokens(secret crmsync.Secret) (*AgentTokens, error) {
	if len(secret.Reveal()) < MinSecretLen {
		return nil, crmsync.Errorf(crmsync.EINVALID, "agent_token_secret", "must be at least %d characters", MinSecretLen)
	}
	return &AgentTokens{secret: []byte(secret.Reveal())}, nil
}

// Issue returns the agent's token.
func (t *AgentTokens) Issue(agentID string) string {
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(t.mac(agentID))
}

func (t *AgentTokens) mac(agentID string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("crmsync agent token\x00"))
	m.Write([]byte(agentID))
	return m.Sum(nil)
}

// ErrBadToken is the answer to a token that is not the agent's.
var ErrBadToken = crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid for this agent")

// Verify reports whether token is agentID's.
func (t *AgentTokens) Verify(token, agentID string) error {
	raw, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || agentID == "" {
		return ErrBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || !hmac.Equal(got, t.mac(agentID)) {
		return ErrBadToken
	}
	return nil
}

// Caller is who sent a request.
type Caller struct {
	// System is true for a holder of an API token: it may act for anyone.
	System bool
	// Agent is the agent whose token was shown, when not System.
	Agent string
}

// MayActAs reports whether the caller may act as (or read for) agent.
func (c Caller) MayActAs(agent string) bool { return c.System || (c.Agent != "" && c.Agent == agent) }

// Authenticator finds the Caller of a request.
type Authenticator struct {
	// APITokens are the system's bearer tokens.
	APITokens []crmsync.Secret
	// Agents checks agent tokens; nil accepts none.
	Agents Verifier
}

// Caller authenticates r. agentID is the agent the request is about (from
// its path, or the agent it acts as), "" when none: an agent token can only
// be checked against an agent. The token comes from "Authorization: Bearer"
// or, for clients that cannot set headers (a browser's EventSource), the
// access_token query parameter. EUNAUTHORIZED when there is no token or it
// fits neither kind; EFORBIDDEN is for the caller to decide with MayActAs.
func (a *Authenticator) Caller(r *http.Request, agentID string) (Caller, error) {
	tok := Token(r)
	if tok == "" {
		return Caller{}, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "a bearer token is required")
	}
	for _, s := range a.APITokens {
		if s.Reveal() != "" && subtle.ConstantTimeCompare([]byte(s.Reveal()), []byte(tok)) == 1 {
			return Caller{System: true}, nil
		}
	}
	if a.Agents != nil && agentID != "" && strings.HasPrefix(tok, tokenPrefix) {
		if err := a.Agents.Verify(tok, agentID); err == nil {
			return Caller{Agent: agentID}, nil
		}
	}
	return Caller{}, crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here")
}

// Token is the request's bearer token, from the Authorization header or
// the access_token query parameter; "" when neither has one.
func Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("access_token")
}

// IsUnauthorized reports whether err is an authentication failure.
func IsUnauthorized(err error) bool {
	var e *crmsync.Error
	return errors.As(err, &e) && e.Code == crmsync.EUNAUTHORIZED
}

// LooksLikeAgentToken reports whether tok has the form of an agent token.
// A token is signed over its agent's id and does not name it, so one that
// has the form but does not verify for the agent at hand is taken to be
// another agent's: a credential that may not do this (403), where a token
// of no known form is no credential at all (401). A forged token of the
// right form also gets 403, which tells its holder nothing more.
func LooksLikeAgentToken(tok string) bool {
	raw, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return false
	}
	mac, err := base64.RawURLEncoding.DecodeString(raw)
	return err == nil && len(mac) == sha256.Size
}

// System lets only the system through: nil for an API token, EFORBIDDEN
// for an agent's token, EUNAUTHORIZED for anything else.
func (a *Authenticator) System(r *http.Request) error {
	c, err := a.Caller(r, "")
	if err == nil && c.System {
		return nil
	}
	if LooksLikeAgentToken(Token(r)) {
		return crmsync.Errorf(crmsync.EFORBIDDEN, "", "an agent token may not do this; it needs an API token")
	}
	if err == nil {
		err = crmsync.Errorf(crmsync.EUNAUTHORIZED, "", "the token is not valid here")
	}
	return err
}
