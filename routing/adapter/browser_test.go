package adapter

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/internal/browsertest"
	"github.com/crmsync/crmsync/internal/redistest"
	"github.com/crmsync/crmsync/internal/routingtest"
	"github.com/crmsync/crmsync/routing"
	"github.com/crmsync/crmsync/routing/access"
	"github.com/crmsync/crmsync/routing/httpapi"
	"github.com/crmsync/crmsync/routing/pull"
	"github.com/crmsync/crmsync/routing/stream"
)

// patience bounds every wait, so a broken page fails the test instead of
// hanging it; nothing is asserted about speed.
const patience = 60 * time.Second

// crmPage is a CRM page of one's own: a target iframe for record pops, a
// listener that points it at each CRM_Record_Pop's recordUrl (and notes
// every event type it is handed), and the adapter in another iframe.
const crmPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title></head>
<body>
<iframe name="target_iframe_adapter" src="about:blank"></iframe>
<script>
window.received = [];
const recordFrame = document.querySelector('iframe[name="target_iframe_adapter"]');
window.addEventListener('message', (e) => {
  // Only the adapter, served from this origin, may steer the CRM.
  if (e.origin !== location.origin) return;
  let ev;
  try { ev = JSON.parse(e.data); } catch (err) { return; }
  if (!ev || typeof ev.type !== 'string') return;
  window.received.push(ev.type);
  if (ev.type === 'CRM_Record_Pop') {
    const u = ev.data && ev.data.recordUrl;
    if (u) recordFrame.src = u;
  }
});
</script>
<iframe id="adapter" src="%s"></iframe>
</body></html>`

type world struct {
	ctx      context.Context // the browser's
	problems *browsertest.Problems
	bg       context.Context
	srv      *httptest.Server
	engine   *routing.Engine
	lists    *pull.Store
	streams  *stream.Streams
}

// newWorld serves the adapter, the agent stream and the routing API over
// one real Redis, the way cmd/crmsync wires them, plus a CRM page at /crm
// that frames the adapter for agent.
func newWorld(t testing.TB, agent string) *world {
	t.Helper()
	w := &world{bg: context.Background()}
	rdb := redistest.Client(t)
	prefix := routingtest.Prefix(t, rdb)

	var err error
	// Offers stay open long enough for a slow machine; no timer needs to
	// fire in this test.
	w.engine, err = routing.New(rdb, routing.Config{Prefix: prefix, OfferTimeout: 30 * time.Minute})
	require.NoError(t, err)
	w.lists, err = pull.New(rdb, pull.Config{Prefix: prefix})
	require.NoError(t, err)
	w.streams, err = stream.New(rdb, stream.Config{Prefix: prefix})
	require.NoError(t, err)

	tokens, err := access.NewAgentTokens(crmsync.Secret(tokenSecret))
	require.NoError(t, err)
	auth := &access.Authenticator{APITokens: []crmsync.Secret{"system-token-for-adapter-tests"}, Agents: tokens}

	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	origin := "http://" + srv.Listener.Addr().String()
	page := &Handler{Config: Config{TargetOrigin: origin}, Tokens: tokens}
	mux.Handle("GET /agent/adapter", page)
	mux.Handle("GET /agent/adapter.js", page)
	mux.Handle("GET /agent/adapter.css", page)
	mux.Handle("GET /v1/agents/{id}/events", w.streams.Handler(auth))
	httpapi.NewHandler(w.engine, auth, tokens, nil).Register(mux.Handle)
	pull.NewHandler(w.lists, auth, nil).Register(mux.Handle)
	adapterURL := "/agent/adapter?" + url.Values{"type": {"chat"}, "from": {"custom"}, "agent": {agent}, "token": {tokens.Issue(agent)}}.Encode()
	mux.HandleFunc("GET /crm", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, crmPage, html.EscapeString(adapterURL))
	})
	mux.HandleFunc("GET /favicon.ico", func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /crm/records/{id}", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, "<!doctype html><title>Record %s</title><p>record</p>", html.EscapeString(r.PathValue("id")))
	})
	srv.Start()
	w.srv = srv
	require.Equal(t, origin, srv.URL)

	runCtx, stop := context.WithCancel(w.bg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.streams.Run(runCtx)
	}()
	// Cleanups run last first: the browser goes (browsertest's cleanup,
	// registered later), then the streams end, then the server stops.
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		stop()
		<-done
		w.streams.Close()
	})
	w.ctx = browsertest.New(t, 3*patience)
	w.problems = browsertest.Watch(t, w.ctx)
	return w
}

// js wraps expr so it always gives a string: its value, or what it threw.
func js(expr string) string {
	return `(() => { try { return String(` + expr + `); } catch (e) { return 'threw: ' + e; } })()`
}

// adapterDoc is the adapter iframe's document, reachable because the CRM
// page and the adapter share the test server's origin.
const adapterDoc = `document.querySelector('iframe#adapter').contentDocument`

func (w *world) eval(tb testing.TB, expr string) string {
	tb.Helper()
	v, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](js(expr)))
	require.NoError(tb, err)
	return v
}

// waitJS polls expr in the CRM page until it gives want.
func (w *world) waitJS(tb testing.TB, what, expr, want string) {
	tb.Helper()
	var got string
	w.waitFor(tb, what, func() bool {
		got = w.eval(tb, expr)
		return got == want
	}, func() string { return fmt.Sprintf("%s is %q, want %q", expr, got, want) })
}

// waitFor polls ok until it holds, failing after patience with what it
// last saw and what the adapter showed.
func (w *world) waitFor(tb testing.TB, what string, ok func() bool, last func() string) {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: gave up waiting: %s\nadapter status %q, error %q, log %q", what, last(),
				w.eval(tb, adapterDoc+`.getElementById('status').textContent`),
				w.eval(tb, adapterDoc+`.getElementById('error').textContent`),
				w.eval(tb, adapterDoc+`.getElementById('log').textContent`))
		}
		time.Sleep(50 * time.Millisecond) // a polling interval, not an assertion
	}
}

func (w *world) received(tb testing.TB) string {
	tb.Helper()
	return w.eval(tb, `window.received.join(',')`)
}

func TestBrowser(t *testing.T) {
	const agent = "sara@example.com"
	w := newWorld(t, agent)
	ctx := w.bg

	// Set up pull mode before the page opens: the agent follows one List.
	require.NoError(t, w.lists.PutList(ctx, pull.List{ID: "vip", Name: "VIP", Channels: []string{"sms"}}))
	require.NoError(t, w.lists.Subscribe(ctx, agent, "vip"))

	require.NoError(t, chromedp.Do(w.ctx, chromedp.Navigate(w.srv.URL+"/crm")))
	w.waitJS(t, "stream live", adapterDoc+`.getElementById('status').textContent`, "live")
	w.waitJS(t, "the List shown", adapterDoc+`.querySelector('.list[data-list="vip"]') !== null`, "true")
	// The agent is not in the engine yet: no offers, and no error either.
	assert.Equal(t, "true", w.eval(t, adapterDoc+`.getElementById('error').hidden`))

	t.Run("record pop", func(t *testing.T) {
		recordURL := w.srv.URL + "/crm/records/42"
		_, err := w.streams.Publish(ctx, agent, "CRM_Record_Pop", map[string]string{"recordUrl": recordURL})
		require.NoError(t, err)
		w.waitJS(t, "record iframe moved", `document.querySelector('iframe[name="target_iframe_adapter"]').src`, recordURL)
		w.waitJS(t, "record page loaded", `document.querySelector('iframe[name="target_iframe_adapter"]').contentDocument.title`, "Record 42")
		assert.Contains(t, w.received(t), "CRM_Record_Pop")
	})

	// A chat adapter hands on the chat events and those of both kinds,
	// not the call adapter's.
	t.Run("session events", func(t *testing.T) {
		for _, ev := range []struct {
			typ  string
			data map[string]any
		}{
			{"New_Call", map[string]any{"call_id": 103646}},
			{"Agent_Login", map[string]any{"agent_id": 5}},
			{"New_Chat", map[string]any{"chat_id": 73522}},
		} {
			_, err := w.streams.Publish(ctx, agent, ev.typ, ev.data)
			require.NoError(t, err)
		}
		// Events arrive in order: once New_Chat is in, New_Call had its turn.
		w.waitFor(t, "New_Chat handed on", func() bool { return containsAll(w.received(t), "New_Chat") },
			func() string { return w.received(t) })
		got := strings.Split(w.received(t), ",")
		assert.Contains(t, got, "Agent_Login")
		assert.NotContains(t, got, "New_Call")
	})

	t.Run("offer accepted", func(t *testing.T) {
		require.NoError(t, w.engine.PutQueue(ctx, routing.Queue{ID: "support", Name: "Support", Channels: []string{"chat"}}))
		require.NoError(t, w.engine.PutAgent(ctx, routing.AgentSpec{ID: agent, Capacity: map[string]int{"chat": 2},
			Queues: []string{"support"}, Presence: routing.Available}))
		c, err := w.engine.CreateConversation(ctx, routing.NewConversation{ID: "c1", Queue: "support", Channel: "chat", Source: "api"})
		require.NoError(t, err)
		require.Equal(t, routing.StateOffered, c.State)
		require.Equal(t, agent, c.OfferedTo)

		accept := adapterDoc + `.querySelector('li.offer[data-conversation="c1"] button.accept')`
		w.waitJS(t, "offer shown", accept+` !== null`, "true")
		assert.Equal(t, "", w.eval(t, accept+`.click() || ''`))

		var got *routing.Conversation
		w.waitFor(t, "conversation assigned", func() bool {
			got, err = w.engine.GetConversation(ctx, "c1")
			require.NoError(t, err)
			return got.State == routing.StateAssigned
		}, func() string { return fmt.Sprintf("state %s", got.State) })
		assert.Equal(t, agent, got.Agent)
		w.waitJS(t, "offer gone", adapterDoc+`.querySelectorAll('li.offer').length`, "0")
		w.waitFor(t, "Offer and Assigned handed to the CRM", func() bool {
			return containsAll(w.received(t), "Offer", "Assigned")
		}, func() string { return w.received(t) })
	})

	t.Run("offer declined", func(t *testing.T) {
		_, err := w.engine.CreateConversation(ctx, routing.NewConversation{ID: "c2", Queue: "support", Channel: "chat", Source: "api"})
		require.NoError(t, err)
		decline := adapterDoc + `.querySelector('li.offer[data-conversation="c2"] button.decline')`
		w.waitJS(t, "offer shown", decline+` !== null`, "true")
		assert.Equal(t, "", w.eval(t, decline+`.click() || ''`))

		var got *routing.Conversation
		w.waitFor(t, "offer declined", func() bool {
			got, err = w.engine.GetConversation(ctx, "c2")
			require.NoError(t, err)
			return got.State == routing.StateWaiting
		}, func() string { return fmt.Sprintf("state %s, offered to %q", got.State, got.OfferedTo) })
		assert.Empty(t, got.OfferedTo)
		w.waitJS(t, "offer gone", adapterDoc+`.querySelectorAll('li.offer').length`, "0")
	})

	t.Run("list request joined", func(t *testing.T) {
		_, err := w.lists.Publish(ctx, pull.NewRequest{ID: "r1", List: "vip", Channel: "sms"})
		require.NoError(t, err)
		row := adapterDoc + `.querySelector('.list[data-list="vip"] li.request[data-request="r1"]')`
		w.waitJS(t, "request shown", row+`.dataset.state`, "UNREAD")
		assert.Equal(t, "", w.eval(t, row+`.querySelector('button.join').click() || ''`))

		var got *pull.Request
		w.waitFor(t, "request active", func() bool {
			got, err = w.lists.GetRequest(ctx, "r1")
			require.NoError(t, err)
			return got.State == pull.StateActive
		}, func() string { return fmt.Sprintf("state %s", got.State) })
		assert.Equal(t, []string{agent}, got.Agents)
		w.waitJS(t, "request shown active", row+`.dataset.state`, "ACTIVE")
		w.waitJS(t, "leave offered", row+`.querySelector('button.leave') !== null`, "true")
	})

	// A change this agent is not told of (another agent joins a request
	// that is already active) leaves a hole in the seqs it sees; the next
	// event it gets shows the hole and the page catches up from the
	// List's changes, so the copy still ends right.
	t.Run("list catches up", func(t *testing.T) {
		for _, a := range []string{"omar", "lee"} {
			require.NoError(t, w.lists.Subscribe(ctx, a, "vip"))
		}
		_, err := w.lists.Publish(ctx, pull.NewRequest{ID: "r2", List: "vip", Channel: "sms"})
		require.NoError(t, err)
		_, err = w.lists.Join(ctx, "r2", "omar") // UNREAD -> ACTIVE: subscribers are told
		require.NoError(t, err)
		_, err = w.lists.Join(ctx, "r2", "lee") // still ACTIVE: no one outside r2 is told
		require.NoError(t, err)
		_, err = w.lists.Close(ctx, "r2", "lee") // subscribers are told, one seq further on
		require.NoError(t, err)

		row2 := adapterDoc + `.querySelector('li.request[data-request="r2"]')`
		w.waitJS(t, "closed request gone", row2+` === null`, "true")
		l, err := w.lists.GetList(ctx, "vip")
		require.NoError(t, err)
		w.waitJS(t, "copy at the List's seq", adapterDoc+`.querySelector('.list[data-list="vip"]').dataset.seq`, strconv.FormatInt(l.Seq, 10))
		w.waitJS(t, "changes fetched", adapterDoc+`.defaultView.performance.getEntriesByType('resource')
			.some((e) => e.name.includes('/lists/vip/changes?') && e.name.includes('after='))`, "true")
		// r1 is untouched and still shows this agent in it.
		row1 := adapterDoc + `.querySelector('li.request[data-request="r1"]')`
		assert.Equal(t, "ACTIVE", w.eval(t, row1+`.dataset.state`))
		assert.Equal(t, "true", w.eval(t, row1+`.querySelector('button.leave') !== null`))
	})

	// A List the agent subscribes to after the page opened shows up with
	// its first request.
	t.Run("list subscribed later", func(t *testing.T) {
		require.NoError(t, w.lists.PutList(ctx, pull.List{ID: "general", Name: "General", Channels: []string{"email"}}))
		require.NoError(t, w.lists.Subscribe(ctx, agent, "general"))
		_, err := w.lists.Publish(ctx, pull.NewRequest{ID: "g1", List: "general", Channel: "email"})
		require.NoError(t, err)
		row := adapterDoc + `.querySelector('.list[data-list="general"] li.request[data-request="g1"]')`
		w.waitJS(t, "request shown", row+`.dataset.state`, "UNREAD")
	})

	// A dropped connection: the browser reconnects with the last id it
	// saw, so what was published meanwhile still arrives, and the List
	// catches up from its changes.
	t.Run("reconnect", func(t *testing.T) {
		w.srv.CloseClientConnections()
		recordURL := w.srv.URL + "/crm/records/43"
		_, err := w.streams.Publish(ctx, agent, "CRM_Record_Pop", map[string]string{"recordUrl": recordURL})
		require.NoError(t, err)
		_, err = w.lists.Publish(ctx, pull.NewRequest{ID: "r3", List: "vip", Channel: "sms"})
		require.NoError(t, err)
		w.waitJS(t, "record iframe moved", `document.querySelector('iframe[name="target_iframe_adapter"]').src`, recordURL)
		row := adapterDoc + `.querySelector('li.request[data-request="r3"]')`
		w.waitJS(t, "request shown", row+`.dataset.state`, "UNREAD")
		w.waitJS(t, "stream live again", adapterDoc+`.getElementById('status').textContent`, "live")
		l, err := w.lists.GetList(ctx, "vip")
		require.NoError(t, err)
		w.waitJS(t, "copy at the List's seq", adapterDoc+`.querySelector('.list[data-list="vip"]').dataset.seq`, strconv.FormatInt(l.Seq, 10))
		assert.Equal(t, "1", w.eval(t, adapterDoc+`.querySelectorAll('li.request[data-request="r3"]').length`), "shown once")
	})

	// Failed loads are expected here (the agent was unknown at first: 404;
	// the dropped stream); anything else is a fault of the page or of its
	// CSP.
	for _, p := range w.problems.List() {
		assert.True(t, strings.HasPrefix(p, "network error: "), "problem in the page: %s", p)
	}
	assert.Equal(t, "true", w.eval(t, adapterDoc+`.getElementById('error').hidden`),
		w.eval(t, adapterDoc+`.getElementById('error').textContent`))
}

func containsAll(csv string, want ...string) bool {
	got := strings.Split(csv, ",")
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
