package templating

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// urlCases run against sessionValues, in Create mode unless said.
var urlCases = []struct {
	desc, src string
	mode      Mode
	want      string
	complete  bool
}{
	{"no variables", "https://crm.example.com/api/v1/contacts", Create, "https://crm.example.com/api/v1/contacts", true},
	{"literal kept as written", "https://crm.example.com/a%20b/?q=a+b&r=%2F#top", Create, "https://crm.example.com/a%20b/?q=a+b&r=%2F#top", true},
	{"path variable", "https://crm.example.com/contact/{Call_ID}", Create, "https://crm.example.com/contact/1234", true},
	{"path variable escaped", "https://crm.example.com/contact/{NAME}", Create, "https://crm.example.com/contact/James%20Bond", true},
	{"empty path variable", "https://crm.example.com/contact/{ACCOUNT_ID}", Create, "https://crm.example.com/contact/", false},
	{"empty path variable before query", "https://crm.example.com/contact/{ACCOUNT_ID}?lang={LANG}", Create, "https://crm.example.com/contact/?lang=en", false},
	{"query variable", "https://crm.example.com/search?email={EMAIL}&lang={LANG}", Create, "https://crm.example.com/search?email=james.bond%40007&lang=en", true},
	{"empty query variable drops its parameter", "https://crm.example.com/search?ani={ANI}&cuid={CUID}&email={EMAIL}", Create, "https://crm.example.com/search?ani=%2B12223334444&cuid=james.bond&email=james.bond%40007", true},
	{"empty query parameter dropped", "https://crm.example.com/search?acc={ACCOUNT_ID}&email={EMAIL}&type={TYPE}", Create, "https://crm.example.com/search?email=james.bond%40007", true},
	{"all query parameters dropped", "https://crm.example.com/search?acc={ACCOUNT_ID}&type={TYPE}#x", Create, "https://crm.example.com/search#x", true},
	{"literal query parameter stays", "https://crm.example.com/search?source=ccai&acc={ACCOUNT_ID}", Create, "https://crm.example.com/search?source=ccai", true},
	{"bare question mark stays", "https://crm.example.com/search?", Create, "https://crm.example.com/search?", true},
	{"query parameter with two variables", "https://crm.example.com/s?who={AGENT_ID}-{LANG}", Create, "https://crm.example.com/s?who=-en", true},
	{"variable as query key", "https://crm.example.com/s?{LANG}=1&{TYPE}=2", Create, "https://crm.example.com/s?en=1", true},
	{"fragment variable", "https://crm.example.com/app#/contact/{MENU_PATH}", Create, "https://crm.example.com/app#/contact/", false},
	{"fragment variable set", "https://crm.example.com/app#/queue/{QUEUE_NAME}", Create, "https://crm.example.com/app#/queue/Orders", true},
	{"question mark in fragment", "https://crm.example.com/#/s?q={EMAIL}", Create, "https://crm.example.com/#/s?q=james.bond%40007", true},
	{"phone search mode", "https://crm.example.com/find?phone={PHONE_NUMBER}", Search, "https://crm.example.com/find?phone=%2B12223334444", true},
	{"port and user", "http://user@crm.example.com:8080/x/{LANG}", Create, "http://user@crm.example.com:8080/x/en", true},
	{"escaped braces", "https://crm.example.com/x?q={{{LANG}}}", Create, "https://crm.example.com/x?q={en}", true},
}

func TestURLExecute(t *testing.T) {
	v := sessionValues(t)
	for _, tt := range urlCases {
		t.Run(tt.desc, func(t *testing.T) {
			u, err := ParseURL(tt.src)
			require.NoError(t, err)
			got, complete := u.Execute(v, tt.mode)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.complete, complete, "complete")
			assert.Equal(t, tt.src, u.String())
		})
	}
}

func TestURLAutomaticPhone(t *testing.T) {
	v := NewValues(Input{Phone: "2223334444"}, PhoneAutomatic)
	u := MustParseURL("https://crm.example.com/find/{PHONE_NUMBER}?p={PHONE_NUMBER}")
	got, complete := u.Execute(&v, Search)
	assert.True(t, complete)
	assert.Equal(t, "https://crm.example.com/find/%2A222%2A333%2A4444?p=%2A222%2A333%2A4444", got)
	got, _ = u.Execute(&v, Create)
	assert.Equal(t, "https://crm.example.com/find/+1%20222%20333%204444?p=%2B1+222+333+4444", got)
}

func TestURLExecuteNil(t *testing.T) {
	got, complete := MustParseURL("https://crm.example.com/c/{ACCOUNT_ID}").Execute(nil, Create)
	assert.Equal(t, "https://crm.example.com/c/", got)
	assert.False(t, complete)

	var u *URL
	got, complete = u.Execute(sessionValues(t), Create)
	assert.Empty(t, got)
	assert.False(t, complete)
}

// Awkward values must reach the server exactly as they were, wherever the
// variable sits.
func TestURLRoundTrip(t *testing.T) {
	values := map[string]string{
		"quotes":     `say "hi" and 'bye'`,
		"ampersand":  "Tom & Jerry&x=1",
		"slash":      "a/b/../c",
		"hash":       "#1 fan#",
		"unicode":    "Zoë Åström 日本 ☕",
		"newline":    "line 1\nline 2\r\n",
		"percent":    "100% %2F %zz",
		"plus":       "+1 222 333 4444",
		"question":   "why?really=yes",
		"everything": "\"a\" & /b/ #c ü\n%d+e?f=g;h,i",
	}
	// The fragment is written as a single-page app route with its own query.
	u := MustParseURL("https://crm.example.com/records/{COMMENT_BODY}/files?body={COMMENT_BODY}&x=1#/view?body={COMMENT_BODY}&y=2")
	for name, val := range values {
		t.Run(name, func(t *testing.T) {
			var v Values
			v.Set(CommentBody, val)
			raw, complete := u.Execute(&v, Create)
			require.True(t, complete)

			parsed, err := url.Parse(raw)
			require.NoError(t, err, raw)
			assert.Equal(t, "crm.example.com", parsed.Host)

			segs := strings.Split(parsed.EscapedPath(), "/")
			require.Len(t, segs, 4, parsed.EscapedPath())
			seg, err := url.PathUnescape(segs[2])
			require.NoError(t, err)
			assert.Equal(t, val, seg, "path")
			assert.Equal(t, "/records/"+val+"/files", parsed.Path, "decoded path")

			assert.Equal(t, url.Values{"body": {val}, "x": {"1"}}, parsed.Query(), "query")
			assert.Equal(t, "/view?body="+val+"&y=2", parsed.Fragment, "fragment")
			_, route, ok := strings.Cut(parsed.EscapedFragment(), "?")
			require.True(t, ok)
			routeQuery, err := url.ParseQuery(route)
			require.NoError(t, err)
			assert.Equal(t, url.Values{"body": {val}, "y": {"2"}}, routeQuery, "query in fragment")
		})
	}
}

func TestURLVars(t *testing.T) {
	u := MustParseURL("https://crm.example.com/{ACCOUNT_ID}/{RECORD_ID}?a={ACCOUNT_ID}&e={email}")
	assert.Equal(t, []Var{AccountID, RecordID, Email}, u.Vars())
	assert.Empty(t, MustParseURL("https://crm.example.com/").Vars())
}

var urlErrorCases = []struct {
	desc, src string
	col       int
	msg       string
}{
	{"empty", "", 1, "URL must start with http:// or https://"},
	{"relative", "/contact/{ACCOUNT_ID}", 10, "variables are not allowed in the scheme or host"},
	{"no scheme", "crm.example.com/contact", 1, "URL must start with http:// or https://"},
	{"other scheme", "ftp://crm.example.com/{ACCOUNT_ID}", 1, "URL must start with http:// or https://"},
	{"no host", "https:///contact/{ACCOUNT_ID}", 1, "URL has no host"},
	{"opaque", "https:crm.example.com/x", 1, "URL has no host"},
	{"variable is the URL", "{ACCOUNT_ID}", 1, "variables are not allowed in the scheme or host"},
	{"variable in scheme", "{TYPE}://crm.example.com/", 1, "variables are not allowed in the scheme or host"},
	{"variable in host", "https://{QUEUE_NAME}.example.com/", 9, "variables are not allowed in the scheme or host"},
	{"variable ends host", "https://crm.example.com{ACCOUNT_ID}", 24, "variables are not allowed in the scheme or host"},
	{"variable before path", "https://crm.example.com{ACCOUNT_ID}/x", 24, "variables are not allowed in the scheme or host"},
	{"variable in port", "https://crm.example.com:{QUEUE_ID}/x", 25, "variables are not allowed in the scheme or host"},
	{"variable in user", "https://{AGENT_EMAIL}@crm.example.com/x", 9, "variables are not allowed in the scheme or host"},
	{"later variable in host", "https://crm{{x}}{LANG}.example.com/", 17, "variables are not allowed in the scheme or host"},
	{"unknown variable", "https://crm.example.com/{FOO}", 25, "unknown variable {FOO}"},
	{"lone brace", "https://crm.example.com/{", 25, "{ must start a variable such as {EMAIL}; write {{ for a literal {"},
	{"bad escape", "https://crm.example.com/a%zz", 26, "% must be followed by two hex digits; write %25 for a literal %"},
	{"escape split by variable", "https://crm.example.com/a%4{LANG}", 26, "% must be followed by two hex digits; write %25 for a literal %"},
	{"escape at end", "https://crm.example.com/a%", 26, "% must be followed by two hex digits; write %25 for a literal %"},
	{"space in host", "https://crm example.com/", 1, `invalid URL: invalid character " " in host name`},
	{"functions are not URLs", "=CONCAT_OR(a)", 1, "URL must start with http:// or https://"},
}

func TestParseURLErrors(t *testing.T) {
	for _, tt := range urlErrorCases {
		t.Run(tt.desc, func(t *testing.T) {
			u, err := ParseURL(tt.src)
			require.Error(t, err)
			assert.Nil(t, u)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%T is not a *SyntaxError", err)
			assert.Equal(t, tt.col, se.Col, "column")
			assert.Equal(t, tt.msg, se.Msg)
		})
	}
}

func TestMustParseURLPanics(t *testing.T) {
	assert.Panics(t, func() { MustParseURL("ftp://x/") })
}

func TestURLExecuteConcurrent(t *testing.T) {
	shared := sessionValues(t)
	u := MustParseURL("https://crm.example.com/c/{Call_ID}?e={EMAIL}&a={ACCOUNT_ID}")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, complete := u.Execute(shared, Create)
				assert.Equal(t, "https://crm.example.com/c/1234?e=james.bond%40007", got)
				assert.True(t, complete)
			}
		})
	}
	wg.Wait()
}

func TestSplitURL(t *testing.T) {
	// A segment type of another package's own: a name for a variable, or
	// literal text.
	type part struct{ lit, name string }
	l := func(s string) part { return part{lit: s} }
	v := func(name string) part { return part{name: name} }
	split := func(segs ...part) URLParts[part] {
		return SplitURL(segs, func(p part) (string, bool) { return p.lit, p.name == "" }, l)
	}

	tests := []struct {
		desc string
		segs []part
		want URLParts[part]
	}{
		{"head only", []part{l("https://h/a/"), v("X")},
			URLParts[part]{Head: []part{l("https://h/a/"), v("X")}}},
		{"query cut inside literal", []part{l("https://h/?a="), v("X"), l("&b=1&c="), v("Y")},
			URLParts[part]{Head: []part{l("https://h/")}, Query: [][]part{{l("a="), v("X")}, {l("b=1")}, {l("c="), v("Y")}}}},
		{"empty parameters kept as parts", []part{l("https://h/?&&a=1")},
			URLParts[part]{Head: []part{l("https://h/")}, Query: [][]part{nil, nil, {l("a=1")}}}},
		{"bare question mark", []part{l("https://h/?")},
			URLParts[part]{Head: []part{l("https://h/")}, Query: [][]part{nil}}},
		{"fragment ends the query", []part{l("https://h/?a="), v("X"), l("#/s?q="), v("Y"), l("&r")},
			URLParts[part]{Head: []part{l("https://h/")}, Query: [][]part{{l("a="), v("X")}}, Frag: []part{l("/s?q="), v("Y"), l("&r")}, HasFrag: true}},
		{"empty fragment", []part{l("https://h/#")},
			URLParts[part]{Head: []part{l("https://h/")}, HasFrag: true}},
		{"variable segments are not cut", []part{l("https://h/"), v("?&#")},
			URLParts[part]{Head: []part{l("https://h/"), v("?&#")}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			assert.Equal(t, tt.want, split(tt.segs...))
		})
	}
}
