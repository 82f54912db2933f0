// Package adapter serves the agent adapter: a small page meant to sit in an
// iframe inside the CRM. It follows one agent's event stream and hands every
// event to the parent window with postMessage, in the shape the vendor's
// listener parses ({"type":"CRM_Record_Pop","data":{"recordUrl":...}}), so a
// CRM can pop records and react to New_Chat, End_Chat and the rest. As the
// contact center's own adapters do, a call adapter hands on no chat events
// and a chat adapter no call events, so a CRM that frames one of each hears
// of every call and every chat once. The page also shows the agent's offers
// with accept and decline buttons and the pull-mode Lists with join and
// leave, keeping each List's copy by routing/pull's sequence rules.
//
// The page holds no state of its own: everything it shows comes from the
// stream (routing/stream) and the routing API (routing/httpapi,
// routing/pull), called with the agent's own token.
package adapter

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/httpjson"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
)

//go:embed page.html adapter.js adapter.css
var files embed.FS

var page = template.Must(template.ParseFS(files, "page.html"))

// Defaults of the Config paths.
const (
	DefaultStreamPath = "/v1/agents/{id}/events"
	DefaultAPIPath    = "/v1/routing"
)

// Config says how the page talks to its parent and to the server.
type Config struct {
	// TargetOrigin is the origin of the CRM page that frames the adapter:
	// every postMessage names it, so no other page can read the events,
	// and the page may be framed only by it. Required; "*" must be
	// written out to allow any origin.
	TargetOrigin string
	// StreamPath is the agent event stream, a path on this server with
	// {id} for the agent. Empty means DefaultStreamPath.
	StreamPath string
	// APIPath is the routing API's root, a path on this server. Empty
	// means DefaultAPIPath.
	APIPath string
}

// Validate checks the config; field names are relative to the adapter's
// config section.
func (c Config) Validate() error {
	switch {
	case c.TargetOrigin == "":
		return crmsync.Errorf(crmsync.EINVALID, "target_origin", "required: the origin of the CRM page that frames the adapter (scheme://host[:port]), or \"*\"")
	case c.TargetOrigin != "*":
		u, err := url.Parse(c.TargetOrigin)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return crmsync.Errorf(crmsync.EINVALID, "target_origin", "want an origin such as https://crm.example.com, got %q", c.TargetOrigin)
		}
	}
	// The page's CSP allows connections to its own origin only, so both
	// paths must stay on this server.
	if p := c.StreamPath; p != "" && (!strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || !strings.Contains(p, "{id}")) {
		return crmsync.Errorf(crmsync.EINVALID, "stream_path", "want a path on this server holding {id}, such as %s, got %q", DefaultStreamPath, p)
	}
	if p := c.APIPath; p != "" && (!strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//")) {
		return crmsync.Errorf(crmsync.EINVALID, "api_path", "want a path on this server, such as %s, got %q", DefaultAPIPath, p)
	}
	return nil
}

func (c Config) origin() string { return strings.TrimSuffix(c.TargetOrigin, "/") }

// Handler serves the page at its path and its two static files beside it
// (adapter.js, adapter.css).
type Handler struct {
	Config Config
	// Tokens checks the agent's token; access.AgentTokens is one. Nil
	// accepts no token, so every page request is refused.
	Tokens access.Verifier
	// Logger gets the requests that failed on our side. Nil discards them.
	Logger *slog.Logger
}

// pageConfig is what the script needs, embedded in the page as JSON.
type pageConfig struct {
	Agent        string `json:"agent"`
	Token        string `json:"token"`
	Type         string `json:"type"`
	From         string `json:"from"`
	TargetOrigin string `json:"targetOrigin"`
	StreamURL    string `json:"streamUrl"`
	APIPath      string `json:"apiPath"`
}

// ServeHTTP serves GET /agent/adapter?type=call|chat&from=custom&agent=ID&token=T
// and the static files.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		// crmsync's codes have no 405; the body keeps httpjson's shape.
		httpjson.Write(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{
			"code": "method_not_allowed", "message": "only GET and HEAD are served here"}})
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/adapter.js"):
		h.static(w, r, "adapter.js", "text/javascript; charset=utf-8")
		return
	case strings.HasSuffix(r.URL.Path, "/adapter.css"):
		h.static(w, r, "adapter.css", "text/css; charset=utf-8")
		return
	}
	cfg, err := h.pageConfig(r)
	if err != nil {
		httpjson.Error(w, r, h.Logger, err)
		return
	}
	body, err := render(cfg)
	if err != nil {
		httpjson.Error(w, r, h.Logger, err)
		return
	}
	h.securityHeaders(w)
	// The token is in the URL and the page: never cache it, and never
	// leak it in a Referer header.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(body)
}

// pageConfig checks the query and the token and says what the script
// needs.
func (h *Handler) pageConfig(r *http.Request) (pageConfig, error) {
	q := r.URL.Query()
	typ := strings.ToLower(q.Get("type"))
	if typ != "call" && typ != "chat" {
		return pageConfig{}, crmsync.Errorf(crmsync.EINVALID, "type", "want call or chat, got %q", truncate(q.Get("type"), 40))
	}
	// The spec's adapters take from=custom for a CRM of one's own; it is
	// the only CRM this page serves, and it may be left out.
	if from := strings.ToLower(q.Get("from")); from != "" && from != "custom" {
		return pageConfig{}, crmsync.Errorf(crmsync.EINVALID, "from", "want custom (or nothing), got %q", truncate(q.Get("from"), 40))
	}
	agent := q.Get("agent")
	if agent == "" {
		return pageConfig{}, crmsync.Errorf(crmsync.EINVALID, "agent", "required: the agent id")
	}
	if err := routing.ValidateID(agent); err != nil {
		return pageConfig{}, crmsync.Errorf(crmsync.EINVALID, "agent", "%v", err)
	}
	token := q.Get("token")
	if token == "" {
		token = access.Token(r)
	}
	if token == "" {
		return pageConfig{}, crmsync.Errorf(crmsync.EUNAUTHORIZED, "token", "required: the agent's token")
	}
	if h.Tokens == nil || h.Tokens.Verify(token, agent) != nil {
		return pageConfig{}, crmsync.Errorf(crmsync.EUNAUTHORIZED, "token", "not valid for agent %s", agent)
	}
	streamPath := h.Config.StreamPath
	if streamPath == "" {
		streamPath = DefaultStreamPath
	}
	apiPath := h.Config.APIPath
	if apiPath == "" {
		apiPath = DefaultAPIPath
	}
	return pageConfig{
		Agent: agent, Token: token, Type: typ, From: "custom",
		TargetOrigin: h.Config.origin(),
		StreamURL:    strings.Replace(streamPath, "{id}", url.PathEscape(agent), 1),
		APIPath:      strings.TrimSuffix(apiPath, "/"),
	}, nil
}

// render writes the page for cfg.
func render(cfg pageConfig) ([]byte, error) {
	// json.Marshal escapes <, > and & (and U+2028/9), so the block cannot
	// end its script element whatever a value holds.
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("adapter: encode page config: %w", err)
	}
	var b bytes.Buffer
	if err := page.Execute(&b, map[string]any{"Config": template.JS(raw), "Type": cfg.Type, "Agent": cfg.Agent}); err != nil {
		return nil, fmt.Errorf("adapter: render page: %w", err)
	}
	return b.Bytes(), nil
}

func (h *Handler) static(w http.ResponseWriter, r *http.Request, name, ctype string) {
	b, err := files.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h.securityHeaders(w)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

// securityHeaders lets the page load its own script and style, fetch and
// follow its stream on its own origin, and be framed by the CRM only.
func (h *Handler) securityHeaders(w http.ResponseWriter) {
	ancestors := h.Config.origin()
	if ancestors == "" {
		ancestors = "'none'"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors "+ancestors)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
