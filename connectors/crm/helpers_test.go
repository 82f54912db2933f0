package crm

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/templating"
)

// startCRM serves a fresh sample CRM for one test.
func startCRM(t testing.TB, opts samplecrm.Options) (*samplecrm.Server, string) {
	t.Helper()
	crm := samplecrm.New(opts)
	srv := httptest.NewServer(crm)
	t.Cleanup(srv.Close)
	return crm, srv.URL
}

// sampleConfig wires every endpoint of the sample CRM, with JSON property
// bodies.
func sampleConfig(base string) *Config {
	return &Config{
		AccountLookupURL: base + "/accounts/{ACCOUNT_ID}",
		RecordLookupURL:  base + "/records/{RECORD_ID}",
		Endpoints: Endpoints{
			FindAccountByID: &Endpoint{
				URL:              base + "/api/accounts/{ACCOUNT_ID}",
				ResponseLocation: "data",
			},
			FindAccount: &Endpoint{
				URL: base + "/api/accounts",
				Parameters: []Parameter{
					{Name: "q", Value: "=CONCAT_OR((Phone:equals:{PHONE_NUMBER}), (Email:equals:{EMAIL}))"},
				},
				ResponseLocation: "data.items.0",
			},
			CreateAccount: &Endpoint{
				URL: base + "/api/accounts",
				Parameters: []Parameter{
					{Name: "name", Value: "{NAME}"},
					{Name: "phone", Value: "{PHONE_NUMBER}"},
					{Name: "email", Value: "{EMAIL}"},
				},
				ResponseLocation: "data.id",
			},
			FindRecord: &Endpoint{
				URL: base + "/api/records",
				Parameters: []Parameter{
					{Name: "account_id", Value: "{ACCOUNT_ID}"},
					{Name: "status", Value: "open"},
				},
				ResponseLocation: "data.items.0",
			},
			CreateRecord: &Endpoint{
				URL: base + "/api/records",
				Parameters: []Parameter{
					{Name: "account_id", Value: "{ACCOUNT_ID}"},
					{Name: "subject", Value: "=DEFAULT_VALUE({TICKET_SUBJECT}, Call {Call_ID})"},
					{Name: "description", Value: "{TICKET_DESCRIPTION}"},
				},
				ResponseLocation: "data",
			},
			UpdateRecord: &Endpoint{
				URL:    base + "/api/records/{RECORD_ID}",
				Method: "PATCH",
				Parameters: []Parameter{
					{Name: "description", Value: "{TICKET_DESCRIPTION}"},
					{Name: "rating", Value: "{RATING}", Type: "number"},
				},
			},
			Comment: &Endpoint{
				URL:        base + "/api/records/{RECORD_ID}/comments",
				Parameters: []Parameter{{Name: "comment", Value: "{COMMENT_BODY}"}},
			},
			UploadFile: &UploadEndpoint{
				Endpoint: Endpoint{
					URL: base + "/api/records/{RECORD_ID}/attachments",
				},
				Type:                 "multipart",
				Files:                []string{FileCallRecordings, FileChatTranscripts},
				AttachmentType:       "id",
				AttachmentIDLocation: "data.id",
				AttachmentBuilderURL: base + "/api/records/{RECORD_ID}/attachments/{ATTACHMENT_ID}",
			},
		},
	}
}

func newClient(t testing.TB, cfg *Config, opts Options) *Client {
	t.Helper()
	require.NoError(t, cfg.Compile())
	c, err := New(cfg, opts)
	require.NoError(t, err)
	return c
}

func session(cfg *Config, in templating.Input) *templating.Values {
	v := templating.NewValues(in, cfg.PhoneNumberFormat())
	return &v
}

var bond = templating.Input{
	Name:              "James Bond",
	Phone:             "+12223334444",
	Email:             "james.bond@agents.co",
	CallID:            "103646",
	TicketSubject:     "Call from James",
	TicketDescription: "Asked about the car.",
}

// memStore is a TokenStore kept in memory that, like Redis, stores a copy
// of each token as JSON. It remembers every token saved.
type memStore struct {
	mu    sync.Mutex
	data  []byte
	saved []*oauth2.Token
	loads int
	// stale, when set, is returned by the next Load instead of the stored
	// token, as when another process rotates the token right after.
	stale *oauth2.Token
}

func (m *memStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.stale != nil {
		t := *m.stale
		m.stale = nil
		return &t, nil
	}
	if m.data == nil {
		return nil, nil
	}
	var t oauth2.Token
	if err := json.Unmarshal(m.data, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func (m *memStore) Save(_ context.Context, t *oauth2.Token) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = b
	c := *t
	m.saved = append(m.saved, &c)
	return nil
}

func (m *memStore) current(t testing.TB) *oauth2.Token {
	t.Helper()
	tok, err := m.Load(context.Background())
	require.NoError(t, err)
	return tok
}

// calls collects the Calls made under a context.
type calls struct {
	mu   sync.Mutex
	list []Call
}

func (c *calls) ctx(parent context.Context) context.Context {
	return WithRecorder(parent, func(call Call) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.list = append(c.list, call)
	})
}

func (c *calls) all() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.list...)
}

func (c *calls) endpoints() []string {
	var names []string
	for _, call := range c.all() {
		names = append(names, call.Endpoint)
	}
	return names
}

// requestsTo returns the logged requests with this method and path.
func requestsTo(crm *samplecrm.Server, method, path string) []samplecrm.RequestLog {
	var out []samplecrm.RequestLog
	for _, r := range crm.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}
