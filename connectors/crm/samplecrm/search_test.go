package samplecrm

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPhonePattern(t *testing.T) {
	tests := []struct {
		pattern, stored string
		want            bool
	}{
		{"+12223334444", "+1 222 333 4444", true},
		{"(222) 333-4444", "222.333.4444", true},
		{"2223334444", "+1 222 333 4444", false}, // digits must be equal
		{"*222*333*4444", "+1 222 333 4444", true},
		{"*222*333*4444", "12223334444", true},
		{"*222*333*4444", "(222) 333-4444", true},
		{"*222*333*4444", "+1 222 999 333 4444", true}, // groups in order, gaps allowed
		{"*222*333*4444", "+1 333 222 4444", false},
		{"*222*333*4444", "+1 222 333 44445", false}, // anchored at the end
		{"*222*333*", "+1 222 333 4444", true},
		{"1222*", "+1 222 333 4444", true},
		{"1222*", "+44 1222 333", false}, // anchored at the start
		{"22*22", "222", false},          // the anchors may not overlap
		{"*", "+1 222 333 4444", false},  // no digits matches nothing
		{"", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" vs "+tt.stored, func(t *testing.T) {
			assert.Equal(t, tt.want, parsePhone(tt.pattern).match(digits(tt.stored)))
		})
	}
}

func TestParseCriteria(t *testing.T) {
	tests := []struct {
		q    string
		want criteria
	}{
		{
			q:    "(Id:equals:5)",
			want: criteria{first: clause{field: "id", key: "Id", value: "5"}},
		},
		{
			q: "(Id:equals:5) or (Email:equals:a@b.c)",
			want: criteria{first: clause{field: "id", key: "Id", value: "5"},
				rest: []step{{c: clause{field: "email", key: "Email", value: "a@b.c"}}}},
		},
		{
			q: "  (custom_user_id:EQUALS:x)  AND  (NAME:equals:James (Jim\\) Bond)",
			want: criteria{first: clause{field: "customuserid", key: "custom_user_id", value: "x"},
				rest: []step{{and: true, c: clause{field: "name", key: "NAME", value: "James (Jim) Bond"}}}},
		},
		{
			q:    "(Email:equals:odd:value)",
			want: criteria{first: clause{field: "email", key: "Email", value: "odd:value"}},
		},
		{
			q:    "(Name:equals:Bond (007))",
			want: criteria{first: clause{field: "name", key: "Name", value: "Bond (007)"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			got, err := parseCriteria(tt.q, accountFields)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// seedAccounts creates accounts 1..5 with phones in different formats.
func seedAccounts(t *testing.T, c *crm) {
	t.Helper()
	for _, body := range []string{
		`{"name":"James Bond","phone":"+1 222 333 4444","email":"james.bond@agents.co","custom_user_id":"jb"}`,
		`{"name":"Eve Moneypenny","phone":"(222) 333-4444","email":"eve@mi6.uk"}`,
		`{"name":"Q","phone":"12223335555","email":"q@mi6.uk","custom_user_id":"q"}`,
		`{"name":"M","phone":"+44 20 7946 0000","email":"m@mi6.uk"}`,
		`{"name":"Felix Leiter","phone":12223334444,"email":"a@b.c"}`,
	} {
		c.mustCreate(t, "/api/accounts", body)
	}
}

func TestSearchAccounts(t *testing.T) {
	c := start(t, Options{})
	seedAccounts(t, c)

	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"id", url.Values{"id": {"3"}}, []string{"3"}},
		{"unknown id", url.Values{"id": {"30"}}, nil},
		{"phone, E.164", url.Values{"phone": {"+12223334444"}}, []string{"1", "5"}},
		{"phone, local format", url.Values{"phone": {"222-333-4444"}}, []string{"2"}},
		{"phone wildcard", url.Values{"phone": {"*222*333*4444"}}, []string{"1", "2", "5"}},
		{"phone wildcard without an end", url.Values{"phone": {"*222*333*"}}, []string{"1", "2", "3", "5"}},
		{"phone wildcard with a short end", url.Values{"phone": {"*55"}}, []string{"3"}},
		{"phone without digits", url.Values{"phone": {"unknown"}}, nil},
		{"email, any case", url.Values{"email": {"Eve@MI6.uk"}}, []string{"2"}},
		{"custom user id", url.Values{"custom_user_id": {"q"}}, []string{"3"}},
		{"name", url.Values{"name": {"james bond"}}, []string{"1"}},
		{"params are ANDed", url.Values{"phone": {"*222*333*4444"}, "email": {"a@b.c"}}, []string{"5"}},
		{"CONCAT_OR", url.Values{"q": {"(Id:equals:4) or (Email:equals:a@b.c)"}}, []string{"4", "5"}},
		{"CONCAT_OR with phone first", url.Values{"q": {"(Phone:equals:+12223334444) or (Email:equals:eve@mi6.uk)"}}, []string{"1", "2", "5"}},
		{"CONCAT_OR with a wildcard", url.Values{"q": {"(Phone:equals:*222*333*5555) or (Email:equals:m@mi6.uk)"}}, []string{"3", "4"}},
		{"CONCAT_AND", url.Values{"q": {"(Phone:equals:*222*333*4444) and (Custom_User_Id:equals:jb)"}}, []string{"1"}},
		{"left to right", url.Values{"q": {"(Id:equals:1) or (Id:equals:2) and (Email:equals:eve@mi6.uk)"}}, []string{"2"}},
		{"left to right, or last", url.Values{"q": {"(Id:equals:1) and (Id:equals:2) or (Id:equals:3)"}}, []string{"3"}},
		{"field names in any case", url.Values{"q": {"(custom_user_id:equals:jb) OR (EMAIL:equals:Q@MI6.UK)"}}, []string{"1", "3"}},
		{"phone with parentheses in q", url.Values{"q": {"(Phone:equals:(222) 333-4444)"}}, []string{"2"}},
		{"q and params together", url.Values{"q": {"(Phone:equals:*4444)"}, "name": {"Felix Leiter"}}, []string{"5"}},
		{"an empty clause value matches nothing", url.Values{"q": {"(Email:equals:)"}}, nil},
		{"no match", url.Values{"q": {"(Email:equals:nobody@example.com)"}}, nil},
		{"descending with a limit", url.Values{"phone": {"*4444"}, "order": {"desc"}, "limit": {"2"}}, []string{"5", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.call(t, http.MethodGet, "/api/accounts?"+tt.query.Encode(), nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			assert.Equal(t, tt.want, r.ids(t))
		})
	}
}

// The wildcard index must not miss a match however the groups fall.
func TestPhoneWildcardAgreesWithScan(t *testing.T) {
	c := start(t, Options{})
	phones := []string{"+1 222 333 4444", "2223334444", "+12223334", "4444", "444", "+1 (222) 333-44-44", "99 4444 222 333"}
	for _, p := range phones {
		c.mustCreate(t, "/api/accounts", `{"phone":"`+p+`"}`)
	}
	for _, pattern := range []string{"*4444", "*444", "*44", "*222*4444", "2*", "*333*", "*4*4*4*4", "*2223334444", "*99*4444*"} {
		var want []string
		p := parsePhone(pattern)
		for i, stored := range phones {
			if p.match(digits(stored)) {
				want = append(want, strconv.Itoa(i+1))
			}
		}
		r := c.call(t, http.MethodGet, "/api/accounts?phone="+url.QueryEscape(pattern), nil)
		require.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, want, r.ids(t), pattern)
	}
}

func BenchmarkFindAccountByPhoneWildcard(b *testing.B) {
	s := New(Options{})
	for i := range 100_000 {
		s.store.createAccount(Account{Phone: "+1 222 " + strconv.Itoa(1_000_000+i)})
	}
	sr, err := parseSearch(url.Values{"phone": {"*222*105*0000"}}, accountFields)
	require.NoError(b, err)
	b.ResetTimer()
	for b.Loop() {
		if got := s.store.searchAccounts(sr); len(got) != 1 {
			b.Fatalf("got %d accounts", len(got))
		}
	}
}
