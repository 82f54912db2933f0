package lookup_test

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

func TestLookupVariables(t *testing.T) {
	s := fullSession()
	tests := []struct {
		variable string
		want     string
	}{
		{"ANI", s.ANI},
		{"CUID", s.CUID},
		{"EMAIL", s.Email},
		{"MENU_PATH", s.MenuPath},
		{"MENU_ID", s.MenuID},
		{"CHANNEL", s.Channel},
		{"TYPE", s.Type},
	}
	for _, tt := range tests {
		t.Run(tt.variable, func(t *testing.T) {
			tmpl := "https://crm.example.com/find?v={" + tt.variable + "}"
			u := compile(t, lookup.Config{IVR: tmpl, Web: tmpl})
			for _, typ := range []string{"IVR_Call", "Web"} {
				s := s
				s.Type = typ
				if tt.variable == "TYPE" {
					tt.want = typ
				}
				got := parseURL(t, u.Lookup(s))
				assert.Equal(t, tt.want, got.Query().Get("v"), "type %s", typ)
				assert.Equal(t, "crm.example.com", got.Host)
				assert.Equal(t, "/find", got.Path)
			}
		})
	}
}

func TestOpenCustomVariables(t *testing.T) {
	s := fullSession()
	u := compile(t, lookup.Config{OpenCustom: map[string]string{
		"q-1":             "https://crm.example.com/accounts/{ACCOUNT_ID}/new?phone={PHONE_NUMBER}",
		"Orders/Returns":  "https://crm.example.com/pop?acct={ACCOUNT_ID}",
		"q-without-a-url": "",
	}})

	got := parseURL(t, u.OpenCustom("q-1", s))
	assert.Equal(t, "/accounts/tmp-9/new", got.Path)
	assert.Equal(t, s.PhoneNumber, got.Query().Get("phone"))

	got = parseURL(t, u.OpenCustom("Orders/Returns", s))
	assert.Equal(t, "acct=tmp-9", got.RawQuery)

	assert.Empty(t, u.OpenCustom("q-without-a-url", s))
	assert.Empty(t, u.OpenCustom("q-2", s), "unknown queue")
	assert.Empty(t, u.OpenCustom("orders/returns", s), "queues match exactly")
	assert.Empty(t, u.Lookup(s), "no lookup URL configured")
}

func TestLookupChoosesURL(t *testing.T) {
	u := compile(t, lookup.Config{
		IVR: "https://crm.example.com/ivr?ani={ANI}",
		Web: "https://crm.example.com/web?cuid={CUID}",
	})
	tests := []struct {
		channel, typ string
		web          bool
	}{
		// Calls, as the vendor lists them.
		{"voice_call", "IncomingCall(app)", true},
		{"voice_call", "ScheduledCall(app)", true},
		{"voice_call", "IncomingCall(web)", true},
		{"voice_call", "ScheduledCall(web)", true},
		{"voice_call", "IVRCall(app)", true},
		{"voice_call", "Outbound_Call", false},
		{"voice_call", "OutboundCall(api)", false},
		{"voice_call", "IncomingCall(api)", false},
		{"voice_call", "IVR_Call", false},
		{"voice_call", "Voicemail", false},
		// Chats.
		{"chat", "Mobile", true},
		{"chat", "Web", true},
		{"chat", "SMS", false},
		// Case and spacing do not matter.
		{"chat", " sms ", false},
		{"CHAT", "web", true},
		// Unknown or missing types fall back on the channel.
		{"chat", "", true},
		{"chat", "WhatsApp", true},
		{"voice_call", "", false},
		{"voice_call", "SomeNewCall", false},
		{"", "", false},
		// The type wins over a contradicting channel.
		{"voice_call", "Web", true},
		{"chat", "IVR_Call", false},
	}
	for _, tt := range tests {
		t.Run(tt.channel+"/"+tt.typ, func(t *testing.T) {
			s := fullSession()
			s.Channel, s.Type = tt.channel, tt.typ
			assert.Equal(t, tt.web, lookup.UsesWeb(tt.channel, tt.typ))
			got := parseURL(t, u.Lookup(s))
			if tt.web {
				assert.Equal(t, "/web", got.Path)
				assert.Equal(t, s.CUID, got.Query().Get("cuid"))
			} else {
				assert.Equal(t, "/ivr", got.Path)
				assert.Equal(t, s.ANI, got.Query().Get("ani"))
			}
		})
	}
}

func TestLookupNotConfigured(t *testing.T) {
	ivr := lookup.Session{Channel: "voice_call", Type: "IVR_Call", ANI: "1"}
	web := lookup.Session{Channel: "chat", Type: "Web", CUID: "1"}

	onlyIVR := compile(t, lookup.Config{IVR: "https://crm.example.com/?a={ANI}"})
	assert.NotEmpty(t, onlyIVR.Lookup(ivr))
	assert.Empty(t, onlyIVR.Lookup(web))

	onlyWeb := compile(t, lookup.Config{Web: "https://crm.example.com/?c={CUID}"})
	assert.Empty(t, onlyWeb.Lookup(ivr))
	assert.NotEmpty(t, onlyWeb.Lookup(web))

	empty := compile(t, lookup.Config{})
	assert.Empty(t, empty.Lookup(ivr))
	assert.Empty(t, empty.OpenCustom("q", ivr))

	var none *lookup.URLs
	assert.Empty(t, none.Lookup(ivr))
	assert.Empty(t, none.OpenCustom("q", ivr))
}

func TestEmptyParametersDropped(t *testing.T) {
	const tmpl = "https://crm.example.com/find?ani={ANI}&cuid={CUID}&email={EMAIL}"
	u := compile(t, lookup.Config{IVR: tmpl})
	tests := []struct {
		name            string
		ani, cuid, mail string
		want            string
	}{
		{"all set", "1", "2", "3", "https://crm.example.com/find?ani=1&cuid=2&email=3"},
		{"first empty", "", "2", "3", "https://crm.example.com/find?cuid=2&email=3"},
		{"middle empty", "1", "", "3", "https://crm.example.com/find?ani=1&email=3"},
		{"last empty", "1", "2", "", "https://crm.example.com/find?ani=1&cuid=2"},
		{"only middle", "", "2", "", "https://crm.example.com/find?cuid=2"},
		{"all empty drops the ?", "", "", "", "https://crm.example.com/find"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := lookup.Session{ANI: tt.ani, CUID: tt.cuid, Email: tt.mail}
			assert.Equal(t, tt.want, u.Lookup(s))
		})
	}
}

func TestEmptyParametersLiteralTextStays(t *testing.T) {
	tests := []struct {
		name, tmpl, want string
	}{
		{
			"literal parameters stay",
			"https://crm.example.com/find?source=ccai&ani={ANI}&v=2",
			"https://crm.example.com/find?source=ccai&v=2",
		},
		{
			"literal text around an empty value goes with it",
			"https://crm.example.com/find?q=phone:{ANI}&x=1",
			"https://crm.example.com/find?x=1",
		},
		{
			"a parameter stays while any of its variables has a value",
			"https://crm.example.com/find?who={ANI}{EMAIL}",
			"https://crm.example.com/find?who=a@b",
		},
		{
			"a bare & is not a parameter",
			"https://crm.example.com/find?&a=1&&b={ANI}&",
			"https://crm.example.com/find?a=1",
		},
		{
			"an empty path variable leaves an empty segment",
			"https://crm.example.com/contacts/{ANI}/view",
			"https://crm.example.com/contacts//view",
		},
		{
			"the fragment stays",
			"https://crm.example.com/app?ani={ANI}#/search",
			"https://crm.example.com/app#/search",
		},
		{
			"an empty fragment variable keeps the #",
			"https://crm.example.com/app#{ANI}",
			"https://crm.example.com/app#",
		},
		{
			"literal escapes are kept as written",
			"https://crm.example.com/a%20b?x=%7B1%7D&y={ANI}",
			"https://crm.example.com/a%20b?x=%7B1%7D",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := compile(t, lookup.Config{IVR: tt.tmpl})
			got := u.Lookup(lookup.Session{Email: "a@b"})
			assert.Equal(t, tt.want, got)
			parseURL(t, got)
		})
	}
}

// nasty values that would change a URL's structure if pasted in raw.
var nasty = []string{
	"a&b=c",
	"x#frag",
	"Orders/Order confirmation/Order info",
	"what?now",
	"two  spaces ",
	`"double" 'single'`,
	"Zoë 東京 🚀",
	"100% + 1 = 2;3,4",
	"%41%zz",
	"../../admin",
	"back\\slash <tag> {brace} [x] |pipe| ^caret `tick`",
	"tab\there\nnewline\x00nul",
	"\xff\xfe not utf-8",
	"+14155550100",
	"=",
	"&",
	"#",
	"/",
	"?",
}

func TestEscapingRoundTrip(t *testing.T) {
	u := compile(t, lookup.Config{
		IVR: "https://crm.example.com/find/{MENU_PATH}/x?ani={ANI}&src=ccai#/contact/{EMAIL}",
	})
	for _, v := range nasty {
		t.Run(url.PathEscape(v), func(t *testing.T) {
			s := lookup.Session{Channel: "voice_call", ANI: v, MenuPath: v, Email: v}
			got := parseURL(t, u.Lookup(s))

			assert.Equal(t, "https", got.Scheme)
			assert.Equal(t, "crm.example.com", got.Host)

			// The path keeps its three segments; the middle one decodes to v.
			segs := strings.Split(got.EscapedPath(), "/")
			require.Len(t, segs, 4, "path %q", got.EscapedPath())
			assert.Equal(t, "find", segs[1])
			assert.Equal(t, "x", segs[3])
			seg, err := url.PathUnescape(segs[2])
			require.NoError(t, err)
			assert.Equal(t, v, seg)

			// The query keeps exactly its two parameters.
			q, err := url.ParseQuery(got.RawQuery)
			require.NoError(t, err)
			assert.Equal(t, url.Values{"ani": {v}, "src": {"ccai"}}, q)

			// The fragment decodes to its literal prefix and v.
			assert.Equal(t, "/contact/"+v, got.Fragment)
		})
	}
}

func TestOpenCustomEscaping(t *testing.T) {
	u := compile(t, lookup.Config{OpenCustom: map[string]string{
		"q": "http://crm.example.com:8080/acct/{ACCOUNT_ID}?phone={PHONE_NUMBER}",
	}})
	for _, v := range nasty {
		t.Run(url.PathEscape(v), func(t *testing.T) {
			got := parseURL(t, u.OpenCustom("q", lookup.Session{AccountID: v, PhoneNumber: v}))
			assert.Equal(t, "crm.example.com:8080", got.Host)
			seg, err := url.PathUnescape(strings.TrimPrefix(got.EscapedPath(), "/acct/"))
			require.NoError(t, err)
			assert.Equal(t, v, seg)
			assert.Equal(t, url.Values{"phone": {v}}, got.Query())
		})
	}
}

func TestCompileErrors(t *testing.T) {
	const lookupAllowed = "{ANI}, {CUID}, {EMAIL}, {MENU_PATH}, {MENU_ID}, {CHANNEL}, {TYPE}"
	const popAllowed = "{ACCOUNT_ID}, {PHONE_NUMBER}"
	tests := []struct {
		name  string
		cfg   lookup.Config
		field string
		want  []string // substrings of the message
	}{
		{"relative", lookup.Config{IVR: "/find?ani={ANI}"}, "ivr_url", []string{"absolute", "http://"}},
		{"no scheme", lookup.Config{IVR: "crm.example.com/find?ani={ANI}"}, "ivr_url", []string{"absolute"}},
		{"ftp", lookup.Config{Web: "ftp://crm.example.com/{CUID}"}, "web_url", []string{"absolute", "https://"}},
		{"javascript", lookup.Config{Web: "javascript:alert({CUID})"}, "web_url", []string{"absolute"}},
		{"no host", lookup.Config{IVR: "https:///find?ani={ANI}"}, "ivr_url", []string{"no host"}},
		{"opaque", lookup.Config{IVR: "https:crm.example.com"}, "ivr_url", []string{"absolute"}},
		{"scheme only in the query", lookup.Config{IVR: "/find?u=https://crm.example.com/&a={ANI}"}, "ivr_url", []string{"absolute"}},
		{"bad port", lookup.Config{IVR: "https://crm.example.com:port/"}, "ivr_url", []string{"not a valid URL: invalid port after host"}},
		{"control character", lookup.Config{IVR: "https://crm.example.com/\x7f"}, "ivr_url", []string{"not a valid URL"}},
		{"unknown variable", lookup.Config{IVR: "https://crm.example.com/?x={PHONE}"}, "ivr_url", []string{"column 28", "unknown variable {PHONE}", lookupAllowed}},
		{"lower case variable", lookup.Config{Web: "https://crm.example.com/?x={email}"}, "web_url", []string{"unknown variable {email}", lookupAllowed}},
		{"pop variable in lookup URL", lookup.Config{IVR: "https://crm.example.com/?x={ACCOUNT_ID}"}, "ivr_url", []string{"unknown variable {ACCOUNT_ID}", lookupAllowed}},
		{"lookup variable in pop", lookup.Config{OpenCustom: map[string]string{"q-1": "https://crm.example.com/?x={ANI}"}}, "open_custom_url.q-1", []string{"unknown variable {ANI}", popAllowed}},
		{"long unknown name is cut", lookup.Config{IVR: "https://crm.example.com/?x={" + strings.Repeat("N", 100) + "}"}, "ivr_url", []string{strings.Repeat("N", 40) + "...}"}},
		{"empty variable", lookup.Config{IVR: "https://crm.example.com/?x={}"}, "ivr_url", []string{"empty variable {}", lookupAllowed}},
		{"unclosed at end", lookup.Config{IVR: "https://crm.example.com/?x={ANI"}, "ivr_url", []string{"column 28", "unclosed brace"}},
		{"unclosed before another", lookup.Config{IVR: "https://crm.example.com/?x={ANI{CUID}"}, "ivr_url", []string{"column 28", "unclosed brace"}},
		{"stray closing brace", lookup.Config{IVR: "https://crm.example.com/?x=ANI}"}, "ivr_url", []string{"column 31", "} without an opening {"}},
		{"variable in host", lookup.Config{IVR: "https://{MENU_ID}.crm.example.com/"}, "ivr_url", []string{"column 9", "{MENU_ID} is in the scheme or host"}},
		{"variable ending the host", lookup.Config{IVR: "https://crm.example.com{MENU_ID}/x"}, "ivr_url", []string{"{MENU_ID} is in the scheme or host"}},
		{"variable as the whole host", lookup.Config{IVR: "https://{MENU_ID}"}, "ivr_url", []string{"scheme or host"}},
		{"variable in port", lookup.Config{IVR: "https://crm.example.com:{MENU_ID}/"}, "ivr_url", []string{"scheme or host"}},
		{"variable in userinfo", lookup.Config{IVR: "https://{CUID}@crm.example.com/"}, "ivr_url", []string{"scheme or host"}},
		{"variable in scheme", lookup.Config{IVR: "{TYPE}://crm.example.com/"}, "ivr_url", []string{"column 1", "scheme or host"}},
		{"variable as the whole URL", lookup.Config{Web: "{EMAIL}"}, "web_url", []string{"absolute"}},
		{"pop variable in host", lookup.Config{OpenCustom: map[string]string{"Orders/Returns": "https://{ACCOUNT_ID}.example.com/"}}, "open_custom_url.Orders/Returns", []string{"scheme or host"}},
		{"lone percent", lookup.Config{IVR: "https://crm.example.com/100%?a={ANI}"}, "ivr_url", []string{"column 28", "%25"}},
		{"percent finished by a variable", lookup.Config{IVR: "https://crm.example.com/?a=%4{MENU_ID}"}, "ivr_url", []string{"two hex digits"}},
		{"bad pop URL", lookup.Config{OpenCustom: map[string]string{"q-2": "not a url {ACCOUNT_ID}"}}, "open_custom_url.q-2", []string{"absolute"}},
		{"empty queue key", lookup.Config{OpenCustom: map[string]string{" ": "https://crm.example.com/"}}, "open_custom_url", []string{"must not be empty"}},
		{"unicode column", lookup.Config{IVR: "https://crm.example.com/ö?x={X}"}, "ivr_url", []string{"column 29"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := lookup.Compile(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, u)
			var e *crmsync.Error
			require.True(t, errors.As(err, &e), "error is %T", err)
			assert.Equal(t, crmsync.EINVALID, e.Code)
			assert.Equal(t, tt.field, e.Field)
			for _, w := range tt.want {
				assert.Contains(t, e.Message, w)
			}
		})
	}
}

func TestCompileErrorsOmitTheURL(t *testing.T) {
	tests := []string{
		"https://crm.example.com/?key=s3cr3t-value&x={NOPE}",
		"https://crm.example.com:s3cr3t-value/",
		"https://user:s3cr3t-value@{ANI}/",
		"https://crm.example.com/?key=s3cr3t-value%",
	}
	for _, tmpl := range tests {
		t.Run(tmpl, func(t *testing.T) {
			_, err := lookup.Compile(lookup.Config{IVR: tmpl})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestCompileReportsFirstQueueInOrder(t *testing.T) {
	cfg := lookup.Config{OpenCustom: map[string]string{
		"b": "https://{ACCOUNT_ID}/",
		"a": "https://crm.example.com/{NOPE}",
		"c": "nope",
	}}
	for range 5 {
		_, err := lookup.Compile(cfg)
		var e *crmsync.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "open_custom_url.a", e.Field)
	}
}

func TestConfigFromYAML(t *testing.T) {
	const doc = `
ivr_url: https://crm.example.com/find?ani={ANI}&menu={MENU_PATH}
web_url: https://crm.example.com/find?cuid={CUID}&email={EMAIL}
open_custom_url:
  "12": https://crm.example.com/new?acct={ACCOUNT_ID}&phone={PHONE_NUMBER}
  Orders/Returns: https://crm.example.com/returns/{ACCOUNT_ID}
`
	var cfg lookup.Config
	require.NoError(t, yaml.Unmarshal([]byte(doc), &cfg))
	u := compile(t, cfg)
	s := fullSession()

	assert.Equal(t, "https://crm.example.com/find?ani=%2B14155550100&menu=Orders/Order%20confirmation/Order%20info", u.Lookup(s))
	s.Channel, s.Type = "chat", "Mobile"
	assert.Equal(t, "https://crm.example.com/find?cuid=cuid-42&email=ada@example.com", u.Lookup(s))
	assert.Equal(t, "https://crm.example.com/new?acct=tmp-9&phone=%2B14155550111", u.OpenCustom("12", s))
	assert.Equal(t, "https://crm.example.com/returns/tmp-9", u.OpenCustom("Orders/Returns", s))
}

func TestConcurrentRendering(t *testing.T) {
	u := compile(t, lookup.Config{
		IVR:        "https://crm.example.com/find?ani={ANI}&menu={MENU_PATH}",
		OpenCustom: map[string]string{"q": "https://crm.example.com/acct/{ACCOUNT_ID}"},
	})
	s := fullSession()
	wantLookup, wantPop := u.Lookup(s), u.OpenCustom("q", s)
	var wg sync.WaitGroup
	results := make([][2]string, 8)
	for i := range results {
		wg.Go(func() {
			for range 100 {
				results[i] = [2]string{u.Lookup(s), u.OpenCustom("q", s)}
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		assert.Equal(t, [2]string{wantLookup, wantPop}, r)
	}
}
