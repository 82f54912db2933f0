package samplecrm

import (
	"net/url"
	"testing"
)

// The parsers see raw client input; whatever it is, they must answer with
// a result or an error, never a panic.

func FuzzParseCriteria(f *testing.F) {
	for _, seed := range []string{
		"(Id:equals:5) or (Email:equals:a@b.c)",
		"(Phone:equals:(222) 333-4444) AND (Name:equals:x\\)",
		"((", ")", "(a:b:c) or", "(Phone:equals:*1*2*)",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		cr, err := parseCriteria(q, accountFields)
		if err != nil {
			return
		}
		st := newStore()
		st.createAccount(Account{Phone: "+1 222 333 4444", Email: "a@b.c"})
		st.searchAccounts(searchRequest{q: &cr, limit: defaultLimit})
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a"}`, `{"c":[{"a":1}]}`, `{"c":[{"a":1},{"b":2}]}`, `{"c":[]}`, `[1]`, `null`, `{"a":{"b":{}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p, err := decodeJSON([]byte(body))
		if err != nil {
			return
		}
		for _, specs := range [][]fieldSpec{accountSpecs, recordSpecs, commentSpecs, attachmentSpecs} {
			_, _ = split(p, specs)
		}
	})
}

func FuzzPhonePattern(f *testing.F) {
	f.Add("*222*333*4444", "+1 222 333 4444")
	f.Add("22*22", "222")
	f.Fuzz(func(t *testing.T, pattern, stored string) {
		parsePhone(pattern).match(digits(stored))
		_, _ = parseSearch(url.Values{"phone": {pattern}}, accountFields)
	})
}
