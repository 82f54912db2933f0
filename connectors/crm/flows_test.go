package crm

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync/connectors/crm/samplecrm"
	"github.com/crmsync/crmsync/templating"
)

func TestFlowsBodyFormats(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(ep *Endpoint)
		wantBody string // the create_account request body
	}{
		{"json property", func(*Endpoint) {},
			`{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co"}`},
		{"json container map", func(ep *Endpoint) { ep.Format, ep.ContainerType, ep.ContainerName = "container", "map", "account" },
			`{"account":{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co"}}`},
		{"json container array", func(ep *Endpoint) { ep.Format, ep.ContainerType, ep.ContainerName = "container", "array", "account" },
			`{"account":[{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co"}]}`},
		{"form", func(ep *Endpoint) { ep.Body = "form" },
			`name=James+Bond&phone=%2B1+222+333+4444&email=james.bond%40agents.co`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crm, base := startCRM(t, samplecrm.Options{})
			cfg := sampleConfig(base)
			tt.edit(cfg.Endpoints.CreateAccount)
			tt.edit(cfg.Endpoints.CreateRecord)
			tt.edit(cfg.Endpoints.UpdateRecord)
			tt.edit(cfg.Endpoints.Comment)
			c := newClient(t, cfg, Options{})
			ctx := context.Background()

			v := session(cfg, bond)
			acc, err := c.FindOrCreateAccount(ctx, v)
			require.NoError(t, err)
			assert.True(t, acc.Created)
			assert.Equal(t, base+"/accounts/"+acc.ID, acc.URL)
			assert.Equal(t, acc.ID, v.Get(templating.AccountID, templating.Create))
			creates := requestsTo(crm, "POST", "/api/accounts")
			require.Len(t, creates, 1)
			assert.Equal(t, tt.wantBody, creates[0].Body)

			accounts := crm.Accounts()
			require.Len(t, accounts, 1)
			assert.Equal(t, "James Bond", accounts[0].Name)
			assert.Equal(t, "james.bond@agents.co", accounts[0].Email)

			// A new session of the same caller finds the account by phone.
			v2 := session(cfg, bond)
			again, err := c.FindOrCreateAccount(ctx, v2)
			require.NoError(t, err)
			assert.Equal(t, AccountResult{ID: acc.ID, URL: acc.URL}, again)

			rec, err := c.FindOrCreateRecord(ctx, v, false)
			require.NoError(t, err)
			assert.True(t, rec.Created)
			assert.Equal(t, base+"/records/"+rec.ID, rec.URL)
			records := crm.Records()
			require.Len(t, records, 1)
			assert.Equal(t, acc.ID, records[0].AccountID)
			assert.Equal(t, "Call from James", records[0].Subject)

			in := bond
			in.TicketDescription, in.Rating = "Car returned.", "5"
			v3 := session(cfg, in)
			v3.Set(templating.RecordID, rec.ID)
			require.NoError(t, c.UpdateRecord(ctx, v3))
			assert.Equal(t, "Car returned.", crm.Records()[0].Description)

			require.NoError(t, c.Comment(ctx, v, "Call ended & rated"))
			comments := crm.Comments(rec.ID)
			require.Len(t, comments, 1)
			assert.Equal(t, "Call ended & rated", comments[0].Body)
			assert.Empty(t, v.Get(templating.CommentBody, templating.Create), "COMMENT_BODY is set for the call only")
		})
	}
}

func TestFindAccountByID(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	ctx := context.Background()
	existing, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
	require.NoError(t, err)

	t.Run("skipped while ACCOUNT_ID is unknown", func(t *testing.T) {
		var rec calls
		res, err := c.FindOrCreateAccount(rec.ctx(ctx), session(cfg, bond))
		require.NoError(t, err)
		assert.Equal(t, existing.ID, res.ID)
		assert.Equal(t, []string{EndpointFindAccount}, rec.endpoints())
	})
	t.Run("found by id", func(t *testing.T) {
		var rec calls
		in := bond
		in.AccountID, in.Phone, in.Email = existing.ID, "", ""
		res, err := c.FindOrCreateAccount(rec.ctx(ctx), session(cfg, in))
		require.NoError(t, err)
		assert.Equal(t, existing.ID, res.ID)
		assert.False(t, res.Created)
		assert.Equal(t, []string{EndpointFindAccountByID}, rec.endpoints())
	})
	t.Run("404 falls through to the query", func(t *testing.T) {
		var rec calls
		in := bond
		in.AccountID = "9999"
		v := session(cfg, in)
		res, err := c.FindOrCreateAccount(rec.ctx(ctx), v)
		require.NoError(t, err)
		assert.Equal(t, existing.ID, res.ID)
		assert.Equal(t, existing.ID, v.Get(templating.AccountID, templating.Create))
		assert.Equal(t, []string{EndpointFindAccountByID, EndpointFindAccount}, rec.endpoints())
		assert.Equal(t, http.StatusNotFound, rec.all()[0].Status)
	})
	t.Run("404 and no match creates", func(t *testing.T) {
		var rec calls
		in := templating.Input{AccountID: "9999", Name: "Eve Moneypenny", Phone: "+13334445555"}
		res, err := c.FindOrCreateAccount(rec.ctx(ctx), session(cfg, in))
		require.NoError(t, err)
		assert.True(t, res.Created)
		assert.NotEqual(t, existing.ID, res.ID)
		assert.Equal(t, []string{EndpointFindAccountByID, EndpointFindAccount, EndpointCreateAccount}, rec.endpoints())
	})
	t.Run("other errors are returned", func(t *testing.T) {
		crm.SetFault(samplecrm.Fault{Status: 500, PathPrefix: "/api/accounts/"})
		defer crm.ClearFault()
		in := bond
		in.AccountID = existing.ID
		_, err := c.FindOrCreateAccount(ctx, session(cfg, in))
		var he *HTTPError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, 500, he.Status)
		assert.Equal(t, EndpointFindAccountByID, he.Endpoint)
	})
}

func TestRecordModes(t *testing.T) {
	tests := []struct {
		mode           string
		mayHaveCreated bool
		wantReused     bool
		wantCalls      []string
	}{
		{RecordReuseOpen, false, true, []string{EndpointFindRecord}},
		{RecordReuseOpen, true, true, []string{EndpointFindRecord}},
		{RecordAlwaysCreate, false, false, []string{EndpointCreateRecord}},
		{RecordAlwaysCreate, true, true, []string{EndpointFindRecord}},
	}
	for _, tt := range tests {
		name := tt.mode
		if tt.mayHaveCreated {
			name += " after a crash"
		}
		t.Run(name, func(t *testing.T) {
			crm, base := startCRM(t, samplecrm.Options{})
			cfg := sampleConfig(base)
			cfg.RecordMode = tt.mode
			c := newClient(t, cfg, Options{})
			ctx := context.Background()
			v := session(cfg, bond)
			_, err := c.FindOrCreateAccount(ctx, v)
			require.NoError(t, err)
			first, err := c.FindOrCreateRecord(ctx, v, false)
			require.NoError(t, err)
			require.True(t, first.Created)

			var rec calls
			v2 := session(cfg, bond)
			v2.Set(templating.AccountID, v.Get(templating.AccountID, templating.Create))
			second, err := c.FindOrCreateRecord(rec.ctx(ctx), v2, tt.mayHaveCreated)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCalls, rec.endpoints())
			assert.Equal(t, tt.wantReused, second.Reused)
			assert.Equal(t, !tt.wantReused, second.Created)
			if tt.wantReused {
				assert.Equal(t, first.ID, second.ID)
				assert.Len(t, crm.Records(), 1)
			} else {
				assert.NotEqual(t, first.ID, second.ID)
				assert.Len(t, crm.Records(), 2)
			}
			assert.Equal(t, second.ID, v2.Get(templating.RecordID, templating.Create))
		})
	}

	t.Run("needs the account", func(t *testing.T) {
		_, base := startCRM(t, samplecrm.Options{})
		cfg := sampleConfig(base)
		c := newClient(t, cfg, Options{})
		_, err := c.FindOrCreateRecord(context.Background(), session(cfg, bond), false)
		assert.ErrorContains(t, err, "account id unknown")
	})
	t.Run("reuse_open creates when nothing is open", func(t *testing.T) {
		_, base := startCRM(t, samplecrm.Options{})
		cfg := sampleConfig(base)
		c := newClient(t, cfg, Options{})
		v := session(cfg, bond)
		_, err := c.FindOrCreateAccount(context.Background(), v)
		require.NoError(t, err)
		var rec calls
		res, err := c.FindOrCreateRecord(rec.ctx(context.Background()), v, false)
		require.NoError(t, err)
		assert.True(t, res.Created)
		assert.Equal(t, []string{EndpointFindRecord, EndpointCreateRecord}, rec.endpoints())
	})
}

func TestNotConfigured(t *testing.T) {
	_, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	cfg.Endpoints.UpdateRecord, cfg.Endpoints.Comment, cfg.Endpoints.UploadFile = nil, nil, nil
	cfg.Endpoints.CreateAccount = nil
	c := newClient(t, cfg, Options{})
	ctx := context.Background()
	v := session(cfg, bond)
	assert.ErrorIs(t, c.UpdateRecord(ctx, v), ErrNotConfigured)
	assert.ErrorIs(t, c.Comment(ctx, v, "hi"), ErrNotConfigured)
	_, err := c.Upload(ctx, v, File{Kind: FileCallRecordings})
	assert.ErrorIs(t, err, ErrNotConfigured)
	_, err = c.FindOrCreateAccount(ctx, v)
	assert.ErrorIs(t, err, ErrNotConfigured, "nothing found and no create_account")
	assert.False(t, c.Has(EndpointUpdateRecord))
	assert.True(t, c.Has(EndpointFindAccount))
	assert.False(t, c.Has("nonsense"))
	assert.False(t, c.Uploads(FileCallRecordings))
}

func TestIncompleteURL(t *testing.T) {
	_, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	var rec calls
	err := c.UpdateRecord(rec.ctx(context.Background()), session(cfg, bond))
	assert.ErrorIs(t, err, ErrIncompleteURL)
	assert.ErrorContains(t, err, "crm: update_record: ")
	assert.Empty(t, rec.all(), "nothing is sent")
	assert.Empty(t, c.RecordURL(session(cfg, bond)))
}

func TestDroppedParameters(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	cfg.Endpoints.FindAccount.Parameters = append(cfg.Endpoints.FindAccount.Parameters,
		Parameter{Name: "email", Value: "{EMAIL}"}, Parameter{Name: "custom_user_id", Value: "{CUSTOM_USER_ID}"})
	cfg.Endpoints.CreateRecord.Body = "form"
	c := newClient(t, cfg, Options{})
	ctx := context.Background()

	in := bond
	in.Email, in.TicketDescription = "", ""
	v := session(cfg, in)
	_, err := c.FindOrCreateAccount(ctx, v)
	require.NoError(t, err)
	_, err = c.FindOrCreateRecord(ctx, v, false)
	require.NoError(t, err)

	find := requestsTo(crm, "GET", "/api/accounts")
	require.Len(t, find, 1)
	assert.Equal(t, "q=%28Phone%3Aequals%3A%2A222%2A333%2A4444%29", find[0].RawQuery, "query")

	create := requestsTo(crm, "POST", "/api/accounts")
	require.Len(t, create, 1)
	assert.JSONEq(t, `{"name":"James Bond","phone":"+1 222 333 4444"}`, create[0].Body, "json")

	rec := requestsTo(crm, "POST", "/api/records")
	require.Len(t, rec, 1)
	assert.Equal(t, "account_id=1&subject=Call+from+James", rec[0].Body, "form")
}

func TestEscapingRoundTrip(t *testing.T) {
	const name = "O'Brien \"Bob\" & Sons / #1 +50% ½ Zoë 東京\nsecond line?x=y"
	for _, body := range []string{"json", "form"} {
		t.Run(body, func(t *testing.T) {
			crm, base := startCRM(t, samplecrm.Options{})
			cfg := sampleConfig(base)
			cfg.Endpoints.CreateAccount.Body = body
			cfg.Endpoints.FindAccount.Parameters = []Parameter{{Name: "name", Value: "{NAME}"}}
			c := newClient(t, cfg, Options{})
			ctx := context.Background()

			in := templating.Input{Name: name, AccountID: name}
			v := session(cfg, in)
			created, err := c.FindOrCreateAccount(ctx, v)
			require.NoError(t, err)
			require.True(t, created.Created)
			accounts := crm.Accounts()
			require.Len(t, accounts, 1)
			assert.Equal(t, name, accounts[0].Name, "stored from the %s body", body)

			// In the path, find_account_by_id carried the name as the id.
			byID := requestsTo(crm, "GET", "/api/accounts/"+name)
			assert.Len(t, byID, 1, "path")

			// In the query, find_account now finds it by name.
			found, err := c.FindOrCreateAccount(ctx, session(cfg, templating.Input{Name: name}))
			require.NoError(t, err)
			assert.Equal(t, created.ID, found.ID)
			finds := requestsTo(crm, "GET", "/api/accounts")
			require.NotEmpty(t, finds)
			q, err := url.ParseQuery(finds[len(finds)-1].RawQuery)
			require.NoError(t, err)
			assert.Equal(t, name, q.Get("name"), "query")
		})
	}
}

func TestParameterTypes(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	ctx := context.Background()
	in := bond
	in.Rating = "5"
	v := session(cfg, in)
	_, err := c.FindOrCreateAccount(ctx, v)
	require.NoError(t, err)
	rec, err := c.FindOrCreateRecord(ctx, v, false)
	require.NoError(t, err)
	require.NoError(t, c.UpdateRecord(ctx, v))
	upd := requestsTo(crm, "PATCH", "/api/records/"+rec.ID)
	require.Len(t, upd, 1)
	assert.Equal(t, `{"description":"Asked about the car.","rating":5}`, upd[0].Body)
	assert.Equal(t, json.Number("5"), crm.Records()[0].Fields["rating"])
}

func TestJSONBodyTypes(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	cfg.Endpoints.UpdateRecord.Parameters = []Parameter{
		{Name: "n1", Value: "{RATING}", Type: "number"},
		{Name: "n2", Value: "007", Type: "number"},
		{Name: "n3", Value: "-1.5e3", Type: "number"},
		{Name: "n4", Value: "+1", Type: "number"},
		{Name: "n5", Value: "four", Type: "number"},
		{Name: "b1", Value: "true", Type: "boolean"},
		{Name: "b2", Value: "0", Type: "boolean"},
		{Name: "b3", Value: "yes", Type: "boolean"},
		{Name: "s", Value: "<b>&</b>"},
		{Name: "dropped", Value: "{EMAIL}", Type: "number"},
	}
	require.NoError(t, cfg.Compile())
	v := session(cfg, templating.Input{Rating: "4", RecordID: "7"})
	o, err := render(cfg.Endpoints.UpdateRecord, v)
	require.NoError(t, err)
	assert.Equal(t, `{"n1":4,"n2":"007","n3":-1.5e3,"n4":"+1","n5":"four","b1":true,"b2":false,"b3":"yes","s":"<b>&</b>"}`, string(o.body))
	assert.Equal(t, "https://crm.example/api/records/7", o.url)
	assert.Equal(t, contentJSON, o.ctype)
}

func TestAppendQuery(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://crm.example/a", "https://crm.example/a?x=1&y=a+b"},
		{"https://crm.example/a?k=v", "https://crm.example/a?k=v&x=1&y=a+b"},
		{"https://crm.example/a?", "https://crm.example/a?x=1&y=a+b"},
		{"https://crm.example/a?k=v&", "https://crm.example/a?k=v&x=1&y=a+b"},
		{"https://crm.example/a#top", "https://crm.example/a?x=1&y=a+b#top"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			cfg := sampleConfig("https://crm.example")
			cfg.Endpoints.FindAccount = &Endpoint{URL: tt.url, Parameters: []Parameter{
				{Name: "x", Value: "1"}, {Name: "empty", Value: "{EMAIL}"}, {Name: "y", Value: "a b"},
			}}
			require.NoError(t, cfg.Compile())
			o, err := render(cfg.Endpoints.FindAccount, session(cfg, templating.Input{}))
			require.NoError(t, err)
			assert.Equal(t, tt.want, o.url)
			assert.Nil(t, o.body)
		})
	}
}

// fixedCRM answers every request with one status and body.
func fixedCRM(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestResponseLocation(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		location string
		idField  string
		wantID   string // find: "" means not found
		wantErr  string // find: a ResponseError containing this
	}{
		{"item of a list", `{"data":{"items":[{"id":123}]}}`, "data.items.0", "", "123", ""},
		{"list stands for its first item", `{"data":[{"id":"a"},{"id":"b"}]}`, "data", "", "a", ""},
		{"the id itself", `{"data":{"id":"x-1"}}`, "data.id", "", "x-1", ""},
		{"a number id", `{"data":{"id":42}}`, "data.id", "", "42", ""},
		{"exponent id", `{"data":{"id":1.23e+02}}`, "data", "", "123", ""},
		{"big id", `{"data":{"id":12345678901234567890123}}`, "data", "", "12345678901234567890123", ""},
		{"fraction id", `{"data":{"id":1.5}}`, "data", "", "1.5", ""},
		{"id field", `{"data":{"ID":7}}`, "data", "ID", "7", ""},
		{"nested id field", `{"data":{"meta":{"key":"k9"}}}`, "data", "meta.key", "k9", ""},
		{"whole body", `{"id":5,"name":"x"}`, "", "", "5", ""},
		{"empty list", `{"data":{"items":[]}}`, "data.items.0", "", "", ""},
		{"empty list itself", `{"data":{"items":[]}}`, "data.items", "", "", ""},
		{"empty object", `{"data":{}}`, "data", "", "", ""},
		{"null", `{"data":null}`, "data", "", "", ""},
		{"missing key", `{"other":1}`, "data.items.0", "", "", ""},
		{"index past the end", `{"data":[{"id":1}]}`, "data.3", "", "", ""},
		{"index into an object", `{"data":{"id":1}}`, "data.0", "", "", ""},
		{"key into a string", `{"data":"abc"}`, "data.x", "", "", ""},
		{"empty body", ``, "data", "", "", ""},
		{"no id", `{"data":{"name":"x"}}`, "data", "", "", "no id at data.id"},
		{"empty id", `{"data":{"id":""}}`, "data", "", "", "no id at data.id"},
		{"boolean id", `{"data":{"id":true}}`, "data", "", "", "no id"},
		{"object id", `{"data":{"id":{"a":1}}}`, "data", "", "", "no id"},
		{"not json", `<html>oops</html>`, "data", "", "", "not JSON"},
		{"trailing data", `{"data":{"id":1}} {}`, "data", "", "", "not JSON"},
		{"too large", `{"data":{"id":1,"pad":"` + strings.Repeat("x", 200) + `"}}`, "data", "", "", "larger than max_response_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := fixedCRM(t, 200, tt.body)
			cfg := &Config{MaxResponseBytes: 128, Endpoints: Endpoints{
				FindAccount:   &Endpoint{URL: base + "/find", ResponseLocation: tt.location, IDField: tt.idField},
				CreateAccount: &Endpoint{URL: base + "/create", ResponseLocation: tt.location, IDField: tt.idField},
			}}
			if tt.name == "too large" {
				cfg.MaxResponseBytes = 64
			}
			c := newClient(t, cfg, Options{})
			ep := cfg.Endpoints.FindAccount
			id, found, err := c.find(context.Background(), ep, session(cfg, bond))
			if tt.wantErr != "" {
				var re *ResponseError
				require.ErrorAs(t, err, &re)
				assert.Contains(t, re.Reason, tt.wantErr)
				assert.Equal(t, EndpointFindAccount, re.Endpoint)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantID != "", found)
				assert.Equal(t, tt.wantID, id)
			}

			// A create must find its id: anything less is a ResponseError.
			id, err = c.create(context.Background(), cfg.Endpoints.CreateAccount, session(cfg, bond))
			if tt.wantID != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.wantID, id)
			} else {
				var re *ResponseError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, EndpointCreateAccount, re.Endpoint)
			}
		})
	}
}

func TestHTTPErrorRetryAfter(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	crm.SetFault(samplecrm.Fault{Status: http.StatusTooManyRequests, RetryAfter: 7})
	var rec calls
	_, err := c.FindOrCreateAccount(rec.ctx(context.Background()), session(cfg, bond))
	var he *HTTPError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusTooManyRequests, he.Status)
	assert.Equal(t, 7*time.Second, he.RetryAfter)
	assert.Equal(t, EndpointFindAccount, he.Endpoint)
	assert.Contains(t, he.Body, "injected fault")
	assert.True(t, strings.HasPrefix(err.Error(), "crm: find_account: status 429 too many requests: "), err.Error())
	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, 429, calls[0].Status)
	assert.Equal(t, 1, calls[0].Attempt)
	assert.NotEmpty(t, calls[0].Err)
}

func TestTransportErrors(t *testing.T) {
	t.Run("dropped connection", func(t *testing.T) {
		crm, base := startCRM(t, samplecrm.Options{})
		cfg := sampleConfig(base)
		c := newClient(t, cfg, Options{})
		crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultDrop})
		var rec calls
		_, err := c.FindOrCreateAccount(rec.ctx(context.Background()), session(cfg, bond))
		var te *TransportError
		require.ErrorAs(t, err, &te)
		assert.False(t, te.Timeout)
		assert.Equal(t, EndpointFindAccount, te.Endpoint)
		assert.Contains(t, err.Error(), "crm: find_account: ")
		calls := rec.all()
		require.Len(t, calls, 1)
		assert.Equal(t, 0, calls[0].Status)
		assert.NotEmpty(t, calls[0].Err)
	})
	t.Run("timeout", func(t *testing.T) {
		crm, base := startCRM(t, samplecrm.Options{})
		cfg := sampleConfig(base)
		cfg.Timeout = time.Second
		c := newClient(t, cfg, Options{})
		crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultSlow, Delay: 5 * time.Second})
		start := time.Now()
		_, err := c.FindOrCreateAccount(context.Background(), session(cfg, bond))
		elapsed := time.Since(start)
		var te *TransportError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Timeout)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		assert.Less(t, elapsed, 3*time.Second)
		assert.GreaterOrEqual(t, elapsed, 900*time.Millisecond)
	})
	t.Run("caller cancelled", func(t *testing.T) {
		crm, base := startCRM(t, samplecrm.Options{})
		cfg := sampleConfig(base)
		c := newClient(t, cfg, Options{})
		crm.SetFault(samplecrm.Fault{Mode: samplecrm.FaultSlow, Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.FindOrCreateAccount(ctx, session(cfg, bond))
		var te *TransportError
		assert.False(t, errors.As(err, &te), "the caller's own deadline is not the CRM's fault")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestIdempotencyKey(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	ctx := WithIdempotencyKey(context.Background(), "call-103646:start")
	for range 2 {
		v := session(cfg, bond)
		_, err := c.create(ctx, cfg.Endpoints.CreateAccount, v)
		require.NoError(t, err)
	}
	assert.Len(t, crm.Accounts(), 1, "the retried create was deduplicated")
	creates := requestsTo(crm, "POST", "/api/accounts")
	require.Len(t, creates, 2)
	assert.Equal(t, "call-103646:start:create_account", creates[0].Header.Get("Idempotency-Key"))

	v := session(cfg, bond)
	_, err := c.FindOrCreateAccount(ctx, v)
	require.NoError(t, err)
	finds := requestsTo(crm, "GET", "/api/accounts")
	require.NotEmpty(t, finds)
	assert.Empty(t, finds[0].Header.Get("Idempotency-Key"), "finds carry no key")
	assert.Equal(t, "application/json", finds[0].Header.Get("Accept"))
	assert.Equal(t, "crmsync", finds[0].Header.Get("User-Agent"))
}

func TestCommentHTML(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	cfg.CommentHTML = true
	c := newClient(t, cfg, Options{})
	ctx := context.Background()
	v := session(cfg, bond)
	_, err := c.FindOrCreateAccount(ctx, v)
	require.NoError(t, err)
	rec, err := c.FindOrCreateRecord(ctx, v, false)
	require.NoError(t, err)
	text := "Rating: 5 <great>\nThanks & bye"
	require.NoError(t, c.Comment(ctx, v, text))
	comments := crm.Comments(rec.ID)
	require.Len(t, comments, 1)
	assert.Equal(t, templating.TextToHTML(text), comments[0].Body)
}

func TestLookupURLs(t *testing.T) {
	cfg := sampleConfig("https://crm.example")
	cfg.AccountLookupURL = "https://crm.example/contact/{ACCOUNT_ID}"
	c := newClient(t, cfg, Options{})
	v := session(cfg, templating.Input{})
	assert.Empty(t, c.AccountURL(v))
	v.Set(templating.AccountID, "a/b c")
	assert.Equal(t, "https://crm.example/contact/a%2Fb%20c", c.AccountURL(v))
	v.Set(templating.RecordID, "9")
	assert.Equal(t, "https://crm.example/records/9", c.RecordURL(v))

	cfg.AccountLookupURL = ""
	c = newClient(t, cfg, Options{})
	assert.Empty(t, c.AccountURL(v))
}

func TestNumberString(t *testing.T) {
	for in, want := range map[string]string{
		"123": "123", "-7": "-7", "1.23e+02": "123", "1E3": "1000", "1.5": "1.5",
		"2.5e-1": "0.25", "1e999999999": "1e999999999", "123456789012345678901e2": "12345678901234567890100",
	} {
		assert.Equal(t, want, numberString(json.Number(in)), in)
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "-1.5e+3": true, "1E9": true,
		"": false, "-": false, "01": false, "+1": false, "1.": false, ".5": false, "1e": false,
		"0x10": false, "NaN": false, "Inf": false, "1 ": false, "１": false,
	} {
		assert.Equal(t, want, isJSONNumber(s), "%q", s)
	}
}

// A find with nothing of the session to search by is not sent: it would
// match everything or be refused.
func TestFindWithNoCriteriaIsNotSent(t *testing.T) {
	crm, base := startCRM(t, samplecrm.Options{})
	cfg := sampleConfig(base)
	c := newClient(t, cfg, Options{})
	v := session(cfg, templating.Input{CallID: "5", Name: "Anonymous Caller"})
	res, err := c.FindOrCreateAccount(context.Background(), v)
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Empty(t, requestsTo(crm, "GET", "/api/accounts"), "no search without criteria")
	assert.Len(t, requestsTo(crm, "POST", "/api/accounts"), 1)

	// A literal parameter alone does not make a search either way: the
	// record search has the account id, so it is sent.
	_, err = c.FindOrCreateRecord(context.Background(), v, false)
	require.NoError(t, err)
	assert.Len(t, requestsTo(crm, "GET", "/api/records"), 1)
}
