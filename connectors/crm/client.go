package crm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/crmsync/crmsync/internal/httperr"
)

// Options are a Client's collaborators. Every field may be left zero.
type Options struct {
	// HTTPClient sends every request, token requests included. Nil: a
	// client with a transport tuned for many requests to one host.
	HTTPClient *http.Client
	// Tokens keeps OAuth tokens across restarts and shares them between
	// processes. Nil: tokens live in memory only.
	Tokens TokenStore
	// Logger receives debug lines per request and warnings. Nil: discard.
	Logger *slog.Logger
	// Now is the clock for timestamps and token expiry. Nil: time.Now.
	Now func() time.Time
}

// TokenStore is where OAuth tokens live. Every new token is saved, so a
// rotated refresh token survives a restart and several processes share one
// token.
type TokenStore interface {
	// Load returns the stored token, or nil, nil when none is stored.
	Load(ctx context.Context) (*oauth2.Token, error)
	Save(ctx context.Context, t *oauth2.Token) error
}

// Client runs the generic CRM API flows against one compiled Config. It is
// safe for concurrent use; the *templating.Values passed to it are not.
type Client struct {
	cfg    *Config
	hc     *http.Client
	log    *slog.Logger
	now    func() time.Time
	red    *redactor
	basic  string // Authorization header value for basic auth
	tokens *tokenSource
}

// New returns a Client for cfg, which must be compiled and must not change
// while the Client is in use.
func New(cfg *Config, opts Options) (*Client, error) {
	if cfg == nil || !cfg.compiled {
		return nil, errors.New("crm: config not compiled")
	}
	c := &Client{cfg: cfg, hc: opts.HTTPClient, log: opts.Logger, now: opts.Now}
	if c.hc == nil {
		c.hc = &http.Client{Transport: defaultTransport()}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}

	a := &cfg.Auth
	secrets := []string{a.Password.Reveal()}
	for _, h := range a.Headers {
		secrets = append(secrets, h.Value.Reveal())
	}
	if o := a.OAuth2; o != nil && a.Type == AuthOAuth2 {
		cs := o.ClientSecret.Reveal()
		// The token request may carry the client secret in a basic auth
		// header, in either spelling.
		secrets = append(secrets, cs, o.RefreshToken.Reveal(),
			o.ClientID+":"+cs, url.QueryEscape(o.ClientID)+":"+url.QueryEscape(cs))
	}
	if a.Type == AuthBasic {
		r := &http.Request{Header: make(http.Header)}
		r.SetBasicAuth(a.Username, a.Password.Reveal())
		c.basic = r.Header.Get("Authorization")
		if !a.Password.IsZero() {
			secrets = append(secrets, a.Username+":"+a.Password.Reveal())
		}
	}
	c.red = newRedactor(secrets...)

	if a.Type == AuthOAuth2 {
		store := opts.Tokens
		if store == nil {
			store = &memoryStore{}
		}
		c.tokens = newTokenSource(c, a.OAuth2, store)
	}
	return c, nil
}

func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// Call is one HTTP exchange with the CRM, reported for the session
// timeline.
type Call struct {
	Endpoint string
	Method   string
	URL      string // secrets redacted
	Status   int    // 0: no answer
	Duration time.Duration
	Err      string // secrets redacted
	At       time.Time
	Attempt  int // 2 for the retry after a refused OAuth token
}

// Recorder receives every Call made under a context, token requests
// included. It is called synchronously from the goroutine making the call,
// so it should be quick.
type Recorder func(Call)

type ctxKey int

const (
	recorderKey ctxKey = iota
	idempotencyKey
)

// WithRecorder returns a context whose CRM calls are reported to r.
func WithRecorder(ctx context.Context, r Recorder) context.Context {
	return context.WithValue(ctx, recorderKey, r)
}

// WithIdempotencyKey returns a context whose creating calls (create_account,
// create_record, comment, upload_file) carry an Idempotency-Key header:
// key, a colon and the endpoint name, so each call has its own. A job that
// makes several comments gives each its own key.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey, key)
}

func idempotencyFor(ctx context.Context, endpoint string) string {
	key, _ := ctx.Value(idempotencyKey).(string)
	if key == "" {
		return ""
	}
	return key + ":" + endpoint
}

func (c *Client) record(ctx context.Context, call Call) {
	observe(call.Endpoint, call.Status, call.Duration)
	if r, _ := ctx.Value(recorderKey).(Recorder); r != nil {
		r(call)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "crm call",
			slog.String("endpoint", call.Endpoint),
			slog.String("method", call.Method),
			slog.String("url", call.URL),
			slog.Int("status", call.Status),
			slog.Duration("duration", call.Duration),
			slog.Int("attempt", call.Attempt),
			slog.String("err", call.Err))
	}
}

// response is a 2xx answer.
type response struct {
	status int
	header http.Header
	body   []byte
	large  bool // body cut at max_response_bytes
}

// send performs o, retrying once with a fresh token when the CRM refuses
// an OAuth token. A status outside 2xx is an *HTTPError.
func (c *Client) send(ctx context.Context, o *outgoing) (*response, error) {
	for attempt := 1; ; attempt++ {
		resp, tok, err := c.attempt(ctx, o, attempt)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized && c.tokens != nil && attempt == 1 {
			c.tokens.reject(tok)
			continue
		}
		if resp.status < 200 || resp.status > 299 {
			return nil, &HTTPError{
				Endpoint:   o.endpoint,
				Status:     resp.status,
				RetryAfter: httperr.RetryAfter(resp.header.Get("Retry-After"), c.now()),
				Body:       httperr.Cut(c.red.String(string(resp.body)), maxErrorBody),
			}
		}
		return resp, nil
	}
}

// Caps on response text kept in errors and results.
const (
	maxErrorBody  = 1 << 10
	maxResultBody = 8 << 10
)

func (c *Client) attempt(ctx context.Context, o *outgoing, attempt int) (*response, *oauth2.Token, error) {
	var tok *oauth2.Token
	if c.tokens != nil {
		var err error
		if tok, err = c.tokens.token(ctx, o.endpoint); err != nil {
			return nil, nil, err
		}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	req, err := c.newRequest(actx, o, tok)
	if err != nil {
		return nil, nil, err
	}

	at, start := c.now(), time.Now()
	call := Call{Endpoint: o.endpoint, Method: o.method, URL: c.red.String(o.url), At: at, Attempt: attempt}
	resp, err := c.hc.Do(req)
	if err != nil {
		call.Duration = time.Since(start)
		terr := c.transportError(ctx, actx, o.endpoint, err)
		call.Err = terr.Error()
		c.record(ctx, call)
		return nil, nil, terr
	}
	call.Status = resp.StatusCode
	body, large, err := readBody(resp.Body, c.cfg.maxBytes)
	call.Duration = time.Since(start)
	if err != nil {
		terr := c.transportError(ctx, actx, o.endpoint, err)
		call.Err = terr.Error()
		c.record(ctx, call)
		return nil, nil, terr
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		call.Err = httperr.Cut(c.red.String(string(body)), 200)
		if call.Err == "" {
			call.Err = http.StatusText(resp.StatusCode)
		}
	}
	c.record(ctx, call)
	return &response{status: resp.StatusCode, header: resp.Header, body: body, large: large}, tok, nil
}

// readBody reads at most limit bytes, then drains a little more and closes,
// so a keep-alive connection can be reused.
func readBody(rc io.ReadCloser, limit int64) ([]byte, bool, error) {
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, min(limit, math.MaxInt64-1)+1))
	if err != nil {
		return nil, false, err
	}
	large := int64(len(body)) > limit
	if large {
		body = body[:limit]
	}
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	return body, large, nil
}

func (c *Client) newRequest(ctx context.Context, o *outgoing, tok *oauth2.Token) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, o.method, o.url, nil)
	if err != nil {
		return nil, fmt.Errorf("crm: %s: %s", o.endpoint, c.red.Error(err))
	}
	switch {
	case o.stream != nil:
		body, size, err := o.stream()
		if err != nil {
			return nil, err
		}
		req.Body, req.ContentLength = body, size
		req.GetBody = func() (io.ReadCloser, error) {
			b, _, err := o.stream()
			return b, err
		}
	case o.body != nil:
		b := o.body
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	h := req.Header
	h["Accept"] = []string{contentJSON}
	h["User-Agent"] = []string{"crmsync"}
	if o.ctype != "" {
		h["Content-Type"] = []string{o.ctype}
	}
	if o.idem != "" {
		h["Idempotency-Key"] = []string{o.idem}
	}
	c.authorize(req, tok)
	return req, nil
}

func (c *Client) authorize(req *http.Request, tok *oauth2.Token) {
	switch {
	case c.basic != "":
		req.Header.Set("Authorization", c.basic)
	case c.cfg.Auth.Type == AuthHeader:
		for _, p := range c.cfg.Auth.Headers {
			req.Header.Add(p.Key, p.Value.Reveal())
		}
	case tok != nil:
		tok.SetAuthHeader(req)
	}
}

// transportError classifies a failed exchange. When the caller's own
// context ended, that is returned as is: it is no fault of the CRM.
func (c *Client) transportError(ctx, actx context.Context, endpoint string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("crm: %s: %w", endpoint, ctx.Err())
	}
	var ne net.Error
	timeout := errors.Is(actx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
	return &TransportError{Endpoint: endpoint, Err: c.red.wrapError(err), Timeout: timeout}
}
