package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/internal/browsertest"
)

// The whole record pop, in a real browser: the sample CRM's agent desk
// frames the adapter, a chat is routed to the agent, the agent clicks
// Accept, the session's CRM flow makes the record, and the desk's record
// pane ends up on the record's page.
func TestRecordPopsInTheBrowser(t *testing.T) {
	d := demoMain(t, nil)
	base := "http://" + d.Addr
	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer demo-token-change-me")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.Less(t, resp.StatusCode, 300, "%s %s: %v", method, path, out)
		return out
	}
	call("PUT", "/v1/routing/agents/sara", `{"capacity":{"chat":1},"queues":["support"],"presence":"available"}`)
	token := call("POST", "/v1/routing/agents/sara/token", "")["token"].(string)

	ctx := browsertest.New(t, 2*time.Minute)
	problems := browsertest.Watch(t, ctx)
	eval := func(expr string) string {
		t.Helper()
		js := `(() => { try { return String(` + expr + `); } catch (e) { return 'threw: ' + e; } })()`
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err)
		return v
	}
	waitJS := func(what, expr, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for got := eval(expr); got != want; got = eval(expr) {
			require.True(t, time.Now().Before(deadline), "%s: %s is %q, want %q; problems: %v", what, expr, got, want, problems.List())
			time.Sleep(50 * time.Millisecond) // a polling interval, not an assertion
		}
	}
	const adapter = `document.getElementById('adapter').contentDocument`

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(base+"/sample-crm/desk?agent=sara&token="+token)))
	waitJS("adapter live", adapter+`.getElementById('status').textContent`, "live")

	call("POST", "/v1/routing/conversations", `{"id":"c-pop-1","queue":"support","channel":"chat","session":"chat-88001",
		"attributes":{"end_user_name":"Jane Doe","end_user_email":"jane@example.com"}}`)
	accept := adapter + `.querySelector('li.offer[data-conversation="c-pop-1"] button.accept')`
	waitJS("offer shown", accept+` !== null`, "true")
	assert.Equal(t, "", eval(accept+`.click() || ''`))

	view := waitSession(t, base, "chat-88001", func(v sessionView) bool { return v.CRM.RecordURL != "" })
	waitJS("record popped", `document.querySelector('iframe[name="target_iframe_adapter"]').src`, view.CRM.RecordURL)
	waitJS("record page shown", `document.querySelector('iframe[name="target_iframe_adapter"]').contentDocument.title.startsWith('Record `+view.CRM.RecordID+`')`, "true")

	c, err := d.routing.engine.GetConversation(context.Background(), "c-pop-1")
	require.NoError(t, err)
	assert.Equal(t, "assigned", string(c.State))
	assert.Equal(t, "sara", c.Agent)
	assert.Empty(t, problems.List(), fmt.Sprint("browser problems: ", problems.List()))
}
