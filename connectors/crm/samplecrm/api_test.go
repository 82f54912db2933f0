package samplecrm

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCreateAccountBodyShapes(t *testing.T) {
	tests := []struct {
		name string
		body any
		want Account
	}{
		{
			name: "property",
			body: `{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co","custom_user_id":"jb","sourceType":"PHONE","rating":5}`,
			want: Account{Name: "James Bond", Phone: "+1 222 333 4444", Email: "james.bond@agents.co", CustomUserID: "jb",
				Fields: map[string]any{"sourceType": "PHONE", "rating": float64(5)}},
		},
		{
			name: "container map",
			body: `{"contact":{"First_Name":"Eve","Last_Name":"Moneypenny","Phone":12223334444}}`,
			want: Account{Name: "Eve Moneypenny", FirstName: "Eve", LastName: "Moneypenny", Phone: "12223334444"},
		},
		{
			name: "container array",
			body: `{"data":[{"name":"Q","email":"q@mi6.uk","customUserId":"q"}]}`,
			want: Account{Name: "Q", Email: "q@mi6.uk", CustomUserID: "q"},
		},
		{
			name: "form",
			body: url.Values{"name": {"M"}, "phone_number": {"(222) 333-0000"}, "branch": {"MI6"}},
			want: Account{Name: "M", Phone: "(222) 333-0000", Fields: map[string]any{"branch": "MI6"}},
		},
		{
			name: "id in the body is ignored",
			body: `{"id":99,"name":"Felix"}`,
			want: Account{Name: "Felix"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := start(t, Options{})
			r := c.call(t, http.MethodPost, "/api/accounts", tt.body)
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			assert.Equal(t, "/api/accounts/1", r.Header.Get("Location"))
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))

			d := r.data(t)
			want := tt.want
			want.ID = "1"
			assert.Equal(t, want.ID, d["id"])
			assert.Equal(t, want.Name, d["name"])
			assert.Equal(t, want.FirstName, d["first_name"])
			assert.Equal(t, want.LastName, d["last_name"])
			assert.Equal(t, want.Phone, d["phone"])
			assert.Equal(t, want.Email, d["email"])
			assert.Equal(t, want.CustomUserID, d["custom_user_id"])
			if want.Fields == nil {
				assert.NotContains(t, d, "fields")
			} else {
				assert.Equal(t, want.Fields, d["fields"])
			}

			accounts := c.Accounts()
			require.Len(t, accounts, 1)
			assert.Equal(t, want.Name, accounts[0].Name)
		})
	}
}

func TestAccountGetAndUpdate(t *testing.T) {
	c := start(t, Options{})
	id := c.mustCreate(t, "/api/accounts", `{"name":"James Bond","phone":"+1 222 333 4444","tier":"gold"}`)

	r := c.call(t, http.MethodGet, "/api/accounts/"+id, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "James Bond", r.data(t)["name"])

	r = c.call(t, http.MethodGet, "/api/accounts/7", nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.JSONEq(t, `{"error":"account 7 not found"}`, string(r.Body))

	for _, bad := range []string{"0", "01", "abc", "-1", "99999999999999999999"} {
		r = c.call(t, http.MethodGet, "/api/accounts/"+bad, nil)
		assert.Equal(t, http.StatusNotFound, r.Status, bad)
	}

	r = c.call(t, http.MethodPatch, "/api/accounts/"+id, `{"phone":"+44 20 7946 0000","vip":true}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	d := r.data(t)
	assert.Equal(t, "+44 20 7946 0000", d["phone"])
	assert.Equal(t, "James Bond", d["name"])
	assert.Equal(t, map[string]any{"tier": "gold", "vip": true}, d["fields"])

	r = c.call(t, http.MethodPut, "/api/accounts/"+id, url.Values{"email": {"jb@mi6.uk"}})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "jb@mi6.uk", r.data(t)["email"])

	// The indexes follow the update.
	assert.Empty(t, c.call(t, http.MethodGet, "/api/accounts?phone=12223334444", nil).ids(t))
	assert.Equal(t, []string{id}, c.call(t, http.MethodGet, "/api/accounts?phone=442079460000", nil).ids(t))
	assert.Equal(t, []string{id}, c.call(t, http.MethodGet, "/api/accounts?email=JB@MI6.UK", nil).ids(t))

	r = c.call(t, http.MethodPatch, "/api/accounts/42", `{"name":"x"}`)
	assert.Equal(t, http.StatusNotFound, r.Status)
	assert.Equal(t, "account 42 not found", r.errorText(t))
}

func TestBadInput(t *testing.T) {
	c := start(t, Options{MaxBodyBytes: 4 << 10})
	account := c.mustCreate(t, "/api/accounts", `{"name":"A"}`)
	record := c.mustCreate(t, "/api/records", `{"account_id":"`+account+`"}`)

	tests := []struct {
		name, method, path string
		body               any
		status             int
		contains           string
	}{
		{"malformed JSON", "POST", "/api/accounts", `{"name":`, 400, "invalid JSON"},
		{"not an object", "POST", "/api/accounts", `["name"]`, 400, "expected a JSON object"},
		{"trailing data", "POST", "/api/accounts", `{"name":"a"} {}`, 400, "after the JSON object"},
		{"empty body", "POST", "/api/accounts", "", 400, "empty"},
		{"no fields", "POST", "/api/accounts", `{}`, 400, "no account fields"},
		{"boolean phone", "POST", "/api/accounts", `{"name":"a","phone":true}`, 400, "phone: must be a string or number"},
		{"object name", "POST", "/api/accounts", `{"name":{"first":"a"},"phone":"1"}`, 400, "name: must be a string or number, not an object"},
		{"container array of two", "POST", "/api/accounts", `{"contact":[{"name":"a"},{"name":"b"}]}`, 400, "contact: a container array must hold exactly one object"},
		{"bad form", "POST", "/api/accounts", url.Values{}, 400, "empty"},
		{"too large", "POST", "/api/accounts", `{"name":"` + strings.Repeat("x", 5<<10) + `"}`, 413, "larger than 4096 bytes"},
		{"record without account", "POST", "/api/records", `{"subject":"s"}`, 400, "account_id: required"},
		{"record with unknown account", "POST", "/api/records", `{"contactId":99,"subject":"s"}`, 400, "contactId: account 99 not found"},
		{"record with bad account id", "POST", "/api/records", `{"account_id":"x1"}`, 400, "account_id: account x1 not found"},
		{"record ids disagree", "POST", "/api/records", `{"account_id":"1","contactId":"2"}`, 400, "disagree"},
		{"record status", "POST", "/api/records", `{"account_id":"1","status":"pending"}`, 400, `status: must be "open" or "closed"`},
		{"record status type", "PATCH", "/api/records/" + record, `{"status":["closed"]}`, 400, "status: must be a string or number, not an array"},
		{"move record to unknown account", "PATCH", "/api/records/" + record, `{"account_id":"5"}`, 400, "account_id: account 5 not found"},
		{"empty account id", "PATCH", "/api/records/" + record, `{"contact_id":""}`, 400, "contact_id: must not be empty"},
		{"unknown record", "GET", "/api/records/9", nil, 404, "record 9 not found"},
		{"comment on unknown record", "POST", "/api/records/9/comments", `{"comment":"x"}`, 404, "record 9 not found"},
		{"comment without body", "POST", "/api/records/" + record + "/comments", `{"format":"html"}`, 400, "comment: required"},
		{"comment html flag", "POST", "/api/records/" + record + "/comments", `{"comment":"x","html":"maybe"}`, 400, "html: must be true or false"},
		{"unknown endpoint", "GET", "/api/contacts", nil, 404, "no such endpoint: GET /api/contacts"},
		{"method not allowed", "DELETE", "/api/accounts/1", nil, 405, "method DELETE not allowed"},
		{"search without criteria", "GET", "/api/accounts", nil, 400, "no search criteria"},
		{"search with empty criteria", "GET", "/api/accounts?phone=&email=", nil, 400, "no search criteria"},
		{"search with only a limit", "GET", "/api/records?limit=5", nil, 400, "no search criteria"},
		{"bad limit", "GET", "/api/records?status=open&limit=-1", nil, 400, "limit"},
		{"bad order", "GET", "/api/records?status=open&order=up", nil, 400, "order"},
		{"q without parentheses", "GET", "/api/accounts?q=" + url.QueryEscape("Email:equals:a@b.c"), nil, 400, "q: expected"},
		{"q unknown field", "GET", "/api/accounts?q=" + url.QueryEscape("(Shoe:equals:9)"), nil, 400, `q: unknown field "Shoe"`},
		{"q operator", "GET", "/api/accounts?q=" + url.QueryEscape("(Name:starts_with:J)"), nil, 400, "unsupported operator"},
		{"q unclosed", "GET", "/api/accounts?q=" + url.QueryEscape("(Name:equals:J"), nil, 400, "unclosed"},
		{"q no operator", "GET", "/api/accounts?q=" + url.QueryEscape("(Name)"), nil, 400, "is not (Field:equals:value)"},
		{"q dangling connector", "GET", "/api/accounts?q=" + url.QueryEscape("(Id:equals:1) or"), nil, 400, "q: unclosed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.call(t, tt.method, tt.path, tt.body)
			assert.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Contains(t, r.errorText(t), tt.contains)
		})
	}

	r := c.call(t, http.MethodDelete, "/api/accounts/1", nil)
	assert.Equal(t, "GET, PUT, PATCH", r.Header.Get("Allow"))
	assert.Len(t, c.Accounts(), 1, "no bad request created an account")
	assert.Len(t, c.Records(), 1, "no bad request created a record")
	assert.Empty(t, c.Comments(record))
}

func TestDefaultBodyLimit(t *testing.T) {
	c := start(t, Options{})
	r := c.call(t, http.MethodPost, "/api/accounts", `{"name":"`+strings.Repeat("x", 1<<20)+`"}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
	assert.Equal(t, "body: larger than 1048576 bytes", r.errorText(t))

	r = c.call(t, http.MethodPost, "/api/accounts", `{"name":"`+strings.Repeat("x", 1<<19)+`"}`)
	assert.Equal(t, http.StatusCreated, r.Status)
}

func TestRecords(t *testing.T) {
	c := start(t, Options{})
	a1 := c.mustCreate(t, "/api/accounts", `{"name":"A"}`)
	a2 := c.mustCreate(t, "/api/accounts", `{"name":"B"}`)

	// The vendor's example request: a numeric contactId and extra fields.
	r := c.call(t, http.MethodPost, "/api/records", `{
		"id": 123, "subject": "Record title", "description": "A longer <b>description</b>",
		"phone": "11234567890", "contactId": 1, "sourceType": "PHONE", "menu": "queue1",
		"direction": "outgoing", "rating": 5, "feedback": "the agent was great!"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	d := r.data(t)
	assert.Equal(t, "1", d["id"])
	assert.Equal(t, a1, d["account_id"])
	assert.Equal(t, "Record title", d["subject"])
	assert.Equal(t, "open", d["status"])
	assert.Equal(t, "/api/records/1", r.Header.Get("Location"))
	fields := d["fields"].(map[string]any)
	assert.Equal(t, "PHONE", fields["sourceType"])
	assert.Equal(t, float64(5), fields["rating"])
	assert.NotContains(t, fields, "id")

	r2 := c.mustCreate(t, "/api/records", `{"ticket":{"account_id":"`+a1+`","subject":"second","status":"CLOSED"}}`)
	r3 := c.mustCreate(t, "/api/records", `{"tickets":[{"contact_id":"`+a2+`","title":"third"}]}`)
	r4 := c.mustCreate(t, "/api/records", url.Values{"accountId": {a2}, "subject": {"fourth"}})

	records := c.Records()
	require.Len(t, records, 4)
	assert.Equal(t, StatusClosed, records[1].Status)
	assert.Equal(t, "third", records[2].Subject)
	assert.Equal(t, a2, records[3].AccountID)

	r = c.call(t, http.MethodGet, "/api/records/"+r3, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "third", r.data(t)["subject"])

	r = c.call(t, http.MethodPut, "/api/records/"+r3, `{"status":"closed","description":"done"}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "closed", r.data(t)["status"])
	assert.Equal(t, "third", r.data(t)["subject"], "PUT merges like PATCH")

	r = c.call(t, http.MethodPatch, "/api/records/"+r4, `{"record":{"subject":"renamed","account_id":"`+a1+`"}}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "renamed", r.data(t)["subject"])

	search := func(query string) []string {
		t.Helper()
		r := c.call(t, http.MethodGet, "/api/records?"+query, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", query, r.Body)
		return r.ids(t)
	}
	assert.Equal(t, []string{"1", r2, r4}, search("account_id="+a1))
	assert.Equal(t, []string{r3}, search("contactId="+a2))
	assert.Equal(t, []string{"1", r4}, search("account_id="+a1+"&status=open"))
	assert.Equal(t, []string{r2, r3}, search("status=closed"))
	assert.Equal(t, []string{r4, r2, "1"}, search("account_id="+a1+"&order=desc"))
	assert.Equal(t, []string{"1"}, search("account_id="+a1+"&limit=1"))
	assert.Equal(t, []string{r2}, search("id="+r2))
	assert.Empty(t, search("account_id=77"))
	assert.Empty(t, search("id=77"))
	assert.Equal(t, []string{r3}, search("q="+url.QueryEscape("(Subject:equals:THIRD)")))
	assert.Equal(t, []string{"1", r3}, search("q="+url.QueryEscape("(Id:equals:1) or (Account_Id:equals:"+a2+")")))
	assert.Equal(t, []string{r4}, search("q="+url.QueryEscape("(Account_Id:equals:"+a1+") and (Status:equals:open) and (Subject:equals:renamed)")))
	assert.Equal(t, []string{"1", r4}, search("status=open&q="+url.QueryEscape("(contact_id:equals:"+a1+")")))
}

func TestComments(t *testing.T) {
	c := start(t, Options{})
	a := c.mustCreate(t, "/api/accounts", `{"name":"A"}`)
	rec := c.mustCreate(t, "/api/records", `{"account_id":"`+a+`"}`)
	path := "/api/records/" + rec + "/comments"

	tests := []struct {
		name        string
		path        string
		body        any
		wantBody    string
		wantHTML    bool
		contentType string
	}{
		{"comment key", path, `{"comment":"Call started","id":123}`, "Call started", false, ""},
		{"body key", path, `{"body":"<p>Rated 5</p>","format":"html"}`, "<p>Rated 5</p>", true, ""},
		{"text key in a container", path, `{"note":{"text":"plain"}}`, "plain", false, ""},
		{"format in the query", path + "?format=html", `{"comment":"<b>hi</b>"}`, "<b>hi</b>", true, ""},
		{"html flag", path, `{"comment":"<i>x</i>","html":true}`, "<i>x</i>", true, ""},
		{"content type", path, `{"comment":"<i>y</i>","content_type":"text/html; charset=utf-8"}`, "<i>y</i>", true, "text/html; charset=utf-8"},
		{"form", path, url.Values{"comment": {"from a form"}, "content_type": {"text/plain"}}, "from a form", false, "text/plain"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.call(t, http.MethodPost, tt.path, tt.body)
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			d := r.data(t)
			assert.Equal(t, itoa(i+1), d["id"])
			assert.Equal(t, rec, d["record_id"])
			assert.Equal(t, tt.wantBody, d["body"])
			assert.Equal(t, tt.wantHTML, d["html"])
			if tt.contentType != "" {
				assert.Equal(t, tt.contentType, d["content_type"])
			}
		})
	}

	r := c.call(t, http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, r.Status)
	items := r.items(t)
	require.Len(t, items, len(tests))
	assert.Equal(t, "Call started", items[0]["body"])

	comments := c.Comments(rec)
	require.Len(t, comments, len(tests))
	assert.True(t, comments[1].HTML)
	assert.Nil(t, c.Comments("99"))

	r = c.call(t, http.MethodGet, "/api/records/99/comments", nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
}

func TestSearchAnswersEmptyItems(t *testing.T) {
	c := start(t, Options{})
	r := c.call(t, http.MethodGet, "/api/accounts?email=nobody@example.com", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.JSONEq(t, `{"data":{"items":[]}}`, string(r.Body))
}

func TestInspectionReturnsCopies(t *testing.T) {
	c := start(t, Options{})
	id := c.mustCreate(t, "/api/accounts", `{"name":"A","tier":"gold"}`)
	got := c.Accounts()
	got[0].Fields["tier"] = "tin"
	got[0].Name = "changed"
	again := c.Accounts()
	assert.Equal(t, "gold", again[0].Fields["tier"])
	assert.Equal(t, "A", again[0].Name)

	r := c.call(t, http.MethodGet, "/api/accounts/"+id, nil)
	assert.Equal(t, "gold", r.data(t)["fields"].(map[string]any)["tier"])
}

func itoa(n int) string { return idOf(n - 1) }
