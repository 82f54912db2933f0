// Package adapter serves the agent adapter: a small page meant to sit in an
// iframe inside the CRM. It follows one agent's event stream and hands every
// event to the parent window with postMessage, in the shape the vendor's
// listener parses ({"type":"CRM_Record_Pop","data":{"recordUrl":...}}), so a
// CRM can pop records and react to New_Chat, End_Chat and the rest. It also
// shows the agent's offers with accept and decline buttons and the pull-mode
// Lists with join and leave.
//
// The page holds no state: everything it shows comes from the stream and
// the routing API, with the agent's own token.
package adapter

import (
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmsync/crmsync"
)

//go:embed page.html adapter.js adapter.css
var files embed.FS

var page = template.Must(template.ParseFS(files, "page.html"))

// Verifier checks an agent's token; routing/stream.Tokens is one.
type Verifier interface {
	Verify(token, agentID string) error
}

// Config says how the page talks to its parent.
type Config struct {
	// TargetOrigin is the origin of the CRM page that frames the adapter:
	// every postMessage names it, so no other page can read the events,
	// and the page may be framed only by it. Required; "*" must be
	// written out to allow any origin.
	TargetOrigin string
	// StreamPath is the agent event stream, with {id} for the agent.
	// Empty means /v1/agents/{id}/events.
	StreamPath string
	// APIPath is the routing API's root. Empty means /v1/routing.
	APIPath string
}

// Validate checks the config; field names are relative to the adapter's
// config section.
func (c Config) Validate() error {
	if c.TargetOrigin == "" {
		return crmsync.Errorf(crmsync.EINVALID, "target_origin", "required: the origin of the CRM page that frames the adapter (scheme://host[:port]), or \"*\"")
	}
	if c.TargetOrigin == "*" {
		return nil
	}
	u, err := url.Parse(c.TargetOrigin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return crmsync.Errorf(crmsync.EINVALID, "target_origin", "want an origin such as https://crm.example.com, got %q", c.TargetOrigin)
	}
	return nil
}

func (c Config) origin() string { return strings.TrimSuffix(c.TargetOrigin, "/") }

// Handler serves the page at its path and its two static files beside it
// (adapter.js, adapter.css).
type Handler struct {
	Config Config
	Tokens Verifier
	// Now is the clock, for the page's cache headers. Nil means time.Now.
	Now func() time.Time
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
		writeError(w, http.StatusMethodNotAllowed, crmsync.Errorf(crmsync.EINVALID, "", "method %s is not allowed", r.Method))
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
	q := r.URL.Query()
	typ := strings.ToLower(q.Get("type"))
	if typ != "call" && typ != "chat" {
		writeError(w, http.StatusBadRequest, crmsync.Errorf(crmsync.EINVALID, "type", "want call or chat, got %q", q.Get("type")))
		return
	}
	// The spec's adapters take from=custom for a CRM of one's own; it is
	// the only CRM this page serves, and it may be left out.
	if from := strings.ToLower(q.Get("from")); from != "" && from != "custom" {
		writeError(w, http.StatusBadRequest, crmsync.Errorf(crmsync.EINVALID, "from", "want custom (or nothing), got %q", q.Get("from")))
		return
	}
	agent, token := q.Get("agent"), q.Get("token")
	if agent == "" {
		writeError(w, http.StatusBadRequest, crmsync.Errorf(crmsync.EINVALID, "agent", "required: the agent id"))
		return
	}
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token == "" || h.Tokens == nil || h.Tokens.Verify(token, agent) != nil {
		writeError(w, http.StatusUnauthorized, crmsync.Errorf(crmsync.EUNAUTHORIZED, "token", "a valid token for agent %q is required", truncate(agent, 64)))
		return
	}
	streamPath := h.Config.StreamPath
	if streamPath == "" {
		streamPath = "/v1/agents/{id}/events"
	}
	apiPath := h.Config.APIPath
	if apiPath == "" {
		apiPath = "/v1/routing"
	}
	cfg := pageConfig{
		Agent: agent, Token: token, Type: typ, From: "custom",
		TargetOrigin: h.Config.origin(),
		StreamURL:    strings.Replace(streamPath, "{id}", url.PathEscape(agent), 1),
		APIPath:      apiPath,
	}
	// json.Marshal escapes <, > and & so the block cannot end the script
	// element whatever the agent id holds.
	raw, err := json.Marshal(cfg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, crmsync.Errorf(crmsync.EINTERNAL, "", "internal error"))
		return
	}
	h.securityHeaders(w)
	// The token is in the URL: the page must never be cached or leak it in
	// a Referer header.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]any{"Config": template.JS(raw), "Type": typ, "Agent": agent})
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

func (h *Handler) securityHeaders(w http.ResponseWriter) {
	ancestors := h.Config.origin()
	if ancestors == "" {
		ancestors = "'none'"
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors "+ancestors)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

func writeError(w http.ResponseWriter, status int, e *crmsync.Error) {
	body := map[string]string{"code": e.Code, "message": e.Message}
	if e.Field != "" {
		body["field"] = e.Field
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
