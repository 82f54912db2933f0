package samplecrm

import (
	"html/template"
	"net/http"
	"net/url"
)

// The agent desk is what a CRM page that embeds crmsync's agent adapter
// looks like: the adapter in one iframe, and a listener that points a
// second iframe at every record the adapter pops. It shows CRM teams what
// to put in their own page, and gives the tests a real parent window.
var desk = template.Must(template.New("desk").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Agent desk · ` + pageTitle + `</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; display: flex; height: 100vh; }
#adapter { width: 22rem; border: 0; border-right: 2px solid #c60; }
iframe[name="target_iframe_adapter"] { flex: 1; border: 0; }
</style>
</head>
<body>
<iframe id="adapter" title="crmsync adapter" src="{{.Adapter}}"></iframe>
<iframe name="target_iframe_adapter" title="CRM record"></iframe>
<script>
'use strict';
// Only the adapter's window may pop records here.
const adapter = document.getElementById('adapter');
const target = document.querySelector('iframe[name="target_iframe_adapter"]');
window.addEventListener('message', (e) => {
  if (e.source !== adapter.contentWindow) return;
  let ev;
  try { ev = JSON.parse(e.data); } catch (err) { return; }
  if (!ev || ev.type !== 'CRM_Record_Pop' || !ev.data || !ev.data.recordUrl) return;
  const u = new URL(ev.data.recordUrl, window.location.href);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return;
  target.src = u.href;
});
</script>
</body>
</html>
`))

// deskPage serves GET /desk?agent=ID&token=T[&type=call|chat]: the adapter
// of that agent (at Options.AdapterPath, on this host) beside a record
// pane.
func (s *Server) deskPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		typ = "chat"
	}
	v := url.Values{"type": {typ}, "from": {"custom"}, "agent": {q.Get("agent")}, "token": {q.Get("token")}}
	path := s.opts.AdapterPath
	if path == "" {
		path = "/agent/adapter"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The token is in the URL: keep the page out of caches.
	w.Header().Set("Cache-Control", "no-store")
	if err := desk.Execute(w, struct{ Adapter string }{path + "?" + v.Encode()}); err != nil {
		s.log.Error("samplecrm: render desk", "err", err)
	}
}
