package crm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/templating"
)

// benchEndpoint is a create_record with ten parameters, variables and
// functions mixed, in a JSON container array.
func benchEndpoint(tb testing.TB) (*Client, *Endpoint, *templating.Values) {
	tb.Helper()
	cfg := sampleConfig("https://crm.example")
	cfg.Auth = Auth{Type: AuthHeader, Headers: []HeaderPair{{Key: "X-Api-Key", Value: "k-123"}}}
	ep := cfg.Endpoints.CreateRecord
	ep.Format, ep.ContainerType, ep.ContainerName = "container", "array", "ticket"
	ep.Parameters = []Parameter{
		{Name: "contactId", Value: "{ACCOUNT_ID}", Type: "number"},
		{Name: "subject", Value: "=DEFAULT_VALUE({TICKET_SUBJECT}, Call {Call_ID})"},
		{Name: "description", Value: "{TICKET_DESCRIPTION_HTML}"},
		{Name: "phone", Value: "{PHONE_NUMBER}"},
		{Name: "email", Value: "{EMAIL}"},
		{Name: "sourceType", Value: "PHONE"},
		{Name: "menu", Value: "{MENU_PATH}"},
		{Name: "agent", Value: "=DEFAULT_VALUE({AGENT_EMAIL}, support@crm.example)"},
		{Name: "who", Value: "=CONCAT_AND({FIRST_NAME}, {LAST_NAME})"},
		{Name: "rating", Value: "{RATING}", Type: "number"},
	}
	c := newClient(tb, cfg, Options{})
	in := bond
	in.AccountID, in.MenuPath, in.Rating = "123", "Sales > Cars", "5"
	in.TicketDescription = "Asked about the car.\nWants a callback & a quote."
	return c, ep, session(cfg, in)
}

func BenchmarkRenderRequest10(b *testing.B) {
	c, ep, v := benchEndpoint(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		o, err := render(ep, v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.newRequest(ctx, o, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderRequest10Baseline builds the same request from values
// already at hand, with json.Marshal of a map: the floor the templated
// path is measured against.
func BenchmarkRenderRequest10Baseline(b *testing.B) {
	_, ep, v := benchEndpoint(b)
	o, err := render(ep, v)
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		body, err := json.Marshal(map[string]any{"ticket": []any{map[string]any{
			"contactId":   123,
			"subject":     "Call from James",
			"description": "Asked about the car.<br>Wants a callback &amp; a quote.",
			"phone":       "+1 222 333 4444",
			"email":       "james.bond@agents.co",
			"sourceType":  "PHONE",
			"menu":        "Sales > Cars",
			"agent":       "support@crm.example",
			"who":         "James and Bond",
			"rating":      5,
		}}})
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, "POST", o.url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		h := req.Header
		h["Accept"] = []string{contentJSON}
		h["User-Agent"] = []string{"crmsync"}
		h["Content-Type"] = []string{contentJSON}
		h.Add("X-Api-Key", "k-123")
	}
}

func TestBenchEndpointBody(t *testing.T) {
	_, ep, v := benchEndpoint(t)
	o, err := render(ep, v)
	require.NoError(t, err)
	require.JSONEq(t, `{"ticket":[{"contactId":123,"subject":"Call from James",
		"description":"Asked about the car.<br>Wants a callback &amp; a quote.","phone":"+1 222 333 4444",
		"email":"james.bond@agents.co","sourceType":"PHONE","menu":"Sales > Cars","agent":"support@crm.example",
		"who":"James and Bond","rating":5}]}`, string(o.body))
}
