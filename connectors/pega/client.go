package pega

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httperr"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Client calls a Pega instance's PostRoutingEvents service. It is safe
// for concurrent use.
type Client struct {
	endpoint string
	timeout  time.Duration
	auth     Auth
	hc       *http.Client
	red      *redactor

	// OAuth 2.0 only: the token in use, renewed when it expires or Pega
	// answers 401 to it.
	cc    *clientcredentials.Config
	mu    sync.Mutex
	token *oauth2.Token
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	endpoint, tokenURL, err := cfg.check()
	if err != nil {
		return nil, err
	}
	c := &Client{endpoint: endpoint, timeout: cfg.Timeout, auth: cfg.Auth, hc: cfg.HTTPClient}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	c.red = &redactor{}
	c.red.add(cfg.Auth.Password.Reveal(), cfg.Auth.Token.Reveal())
	if !cfg.Auth.Password.IsZero() {
		// A server that echoes the request's headers would show this.
		c.red.add(base64.StdEncoding.EncodeToString([]byte(cfg.Auth.Username + ":" + cfg.Auth.Password.Reveal())))
	}
	if o := cfg.Auth.OAuth2; o != nil {
		c.red.add(o.ClientSecret.Reveal())
		c.cc = &clientcredentials.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret.Reveal(),
			TokenURL:     tokenURL,
			Scopes:       o.Scopes,
		}
	}
	return c, nil
}

// request is PostRoutingEvents' body.
type request struct {
	Conversation string `json:"_conversation_id"`
	Agent        string `json:"_agent_id"`
}

// Assign tells Pega the CSR the router chose for a conversation
// (PostRoutingEvents). nil means Pega answered Success. An error wrapping
// ErrFail means Pega refused; *HTTPError, *TransportError and
// *ResponseError are the rest, and Retryable sorts them.
func (c *Client) Assign(ctx context.Context, conversation, agent string) error {
	if err := checkArg("_conversation_id", conversation); err != nil {
		return err
	}
	if err := checkArg("_agent_id", agent); err != nil {
		return err
	}
	body, err := json.Marshal(request{Conversation: conversation, Agent: agent})
	if err != nil {
		return fmt.Errorf("pega: encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	status, err := c.post(ctx, body)
	if err != nil {
		return err
	}
	switch status {
	case "success":
		return nil
	case "fail":
		return fmt.Errorf("pega: conversation %s, agent %s: %w", conversation, agent, ErrFail)
	}
	return &ResponseError{Endpoint: EndpointPostRoutingEvents, Reason: fmt.Sprintf("_status is %q, want Success or Fail", httperr.Cut(status, 40))}
}

// post sends body and returns the answer's _status, lowered. Under OAuth
// 2.0 a 401 drops the token and the call is made once more with a new
// one: Pega may have revoked it before it expired, and a 401 means
// nothing was done.
func (c *Client) post(ctx context.Context, body []byte) (string, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
		if err != nil {
			return "", fmt.Errorf("pega: build request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "crmsync")
		switch {
		case tok != nil:
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		case !c.auth.Token.IsZero():
			req.Header.Set("Authorization", "Bearer "+c.auth.Token.Reveal())
		default:
			req.SetBasicAuth(c.auth.Username, c.auth.Password.Reveal())
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return "", c.transportError(EndpointPostRoutingEvents, err)
		}
		raw, tooLarge, err := readCapped(resp.Body)
		resp.Body.Close()
		if err != nil {
			return "", c.transportError(EndpointPostRoutingEvents, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && tok != nil && attempt == 0 {
			c.dropToken(tok)
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return "", &HTTPError{
				Endpoint:   EndpointPostRoutingEvents,
				Status:     resp.StatusCode,
				RetryAfter: httperr.RetryAfter(resp.Header.Get("Retry-After"), time.Now()),
				Body:       c.red.redact(httperr.Cut(string(raw), 512)),
			}
		}
		if tooLarge {
			return "", &ResponseError{Endpoint: EndpointPostRoutingEvents, Reason: fmt.Sprintf("larger than %d bytes", MaxResponseBytes)}
		}
		return readStatus(raw)
	}
}

// readStatus finds _status in an answer. The key is matched without
// regard to spaces or case, as Pega's own keys carry stray spaces.
func readStatus(raw []byte) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", &ResponseError{Endpoint: EndpointPostRoutingEvents, Reason: "not a JSON object"}
	}
	for k, v := range obj {
		if canonicalKey(k) != "_status" {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", &ResponseError{Endpoint: EndpointPostRoutingEvents, Reason: "_status is not a string"}
		}
		return strings.ToLower(strings.TrimSpace(s)), nil
	}
	return "", &ResponseError{Endpoint: EndpointPostRoutingEvents, Reason: "no _status"}
}

func canonicalKey(k string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, k))
}

// accessToken returns the OAuth 2.0 token to send, nil under the other
// schemes. Holding the lock while fetching makes concurrent calls wait for
// one token request instead of each making their own.
func (c *Client) accessToken(ctx context.Context) (*oauth2.Token, error) {
	if c.cc == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token.Valid() {
		return c.token, nil
	}
	tok, err := c.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
	if err != nil {
		return nil, c.tokenError(err)
	}
	c.red.addIssued(tok.AccessToken, tok.RefreshToken)
	c.token = tok
	return tok, nil
}

// dropToken forgets tok unless another call already replaced it.
func (c *Client) dropToken(tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != nil && c.token.AccessToken == tok.AccessToken {
		c.token = nil
	}
}

func (c *Client) tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return &HTTPError{
			Endpoint:   EndpointToken,
			Status:     re.Response.StatusCode,
			RetryAfter: httperr.RetryAfter(re.Response.Header.Get("Retry-After"), time.Now()),
			Body:       c.red.redact(httperr.Cut(string(re.Body), 512)),
		}
	}
	var ue interface{ Timeout() bool } // *url.Error, net.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return c.transportError(EndpointToken, err)
	}
	// A 2xx the oauth2 package could not read: no token in it.
	return &ResponseError{Endpoint: EndpointToken, Reason: c.red.redact(err.Error())}
}

func (c *Client) transportError(endpoint string, err error) error {
	var ne net.Error
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	return &TransportError{Endpoint: endpoint, Err: httperr.Redacted(c.red.redact(err.Error()), err), Timeout: timeout}
}

// readCapped reads up to MaxResponseBytes and says whether there was more.
func readCapped(r io.Reader) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > MaxResponseBytes {
		return b[:MaxResponseBytes], true, nil
	}
	return b, false, nil
}

// checkArg refuses an id Pega could not have issued, before anything is
// sent.
func checkArg(field, s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return crmsync.Errorf(crmsync.EINVALID, field, "is empty")
	case len(s) > 128:
		return crmsync.Errorf(crmsync.EINVALID, field, "is longer than 128 bytes")
	case strings.ContainsFunc(s, unicode.IsControl):
		return crmsync.Errorf(crmsync.EINVALID, field, "holds a control character")
	}
	return nil
}

// redactor replaces every secret the client knows (configured ones and
// the latest tokens it was issued) in text bound for an error.
type redactor struct {
	mu      sync.Mutex
	secrets []string
	issued  []string // the newest last, at most maxIssued
}

// maxIssued bounds the issued tokens kept: older ones are long expired and
// a client that runs for months must not grow without end.
const maxIssued = 8

func (r *redactor) addIssued(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			r.issued = append(r.issued, s)
		}
	}
	if n := len(r.issued); n > maxIssued {
		r.issued = append([]string(nil), r.issued[n-maxIssued:]...)
	}
}

func (r *redactor) add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
}

func (r *redactor) redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, list := range [][]string{r.secrets, r.issued} {
		for _, secret := range list {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	return s
}
