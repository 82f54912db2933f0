package templating

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// awkward is in every variable of awkwardValues: it has the characters that
// mean something in URLs and templates.
const awkward = `a/b?c#d&e=f+g %zz "ü"` + "\n{x}(y),"

func awkwardValues() *Values {
	var v Values
	for x := Var(1); x < NumVars; x++ {
		// Phone numbers too: an unparseable number is kept as given.
		v.Set(x, awkward)
	}
	return &v
}

func requireSyntaxError(t *testing.T, src string, err error) {
	t.Helper()
	var se *SyntaxError
	require.True(t, errors.As(err, &se), "%T is not a *SyntaxError", err)
	require.GreaterOrEqual(t, se.Col, 1)
	require.LessOrEqual(t, se.Col, utf8.RuneCountInString(src)+1)
	require.NotEmpty(t, se.Msg)
}

func requireVarsUnique(t *testing.T, vars []Var) {
	t.Helper()
	var seen [NumVars]bool
	for _, x := range vars {
		require.True(t, x.valid(), "%d", x)
		require.False(t, seen[x], "%s repeated", x)
		seen[x] = true
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range executeCases {
		f.Add(tt.src)
	}
	for _, tt := range parseErrorCases {
		f.Add(tt.src)
	}
	session := sessionValues(f)
	full := awkwardValues()
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := Parse(src)
		if err != nil {
			requireSyntaxError(t, src, err)
			return
		}
		require.Equal(t, src, tmpl.String())
		requireVarsUnique(t, tmpl.Vars())
		for _, m := range []Mode{Create, Search} {
			tmpl.Execute(session, m)
			tmpl.Execute(nil, m)
			if len(tmpl.Vars()) > 0 {
				// Empty values cannot produce text from variables, and a
				// template with variables has somewhere to put them.
				got := tmpl.Execute(full, m)
				if !strings.HasPrefix(src, "=") {
					assert.Contains(t, got, awkward)
				}
			}
		}
	})
}

func FuzzParseURL(f *testing.F) {
	for _, tt := range urlCases {
		f.Add(tt.src)
	}
	for _, tt := range urlErrorCases {
		f.Add(tt.src)
	}
	session := sessionValues(f)
	full := awkwardValues()
	f.Fuzz(func(t *testing.T, src string) {
		u, err := ParseURL(src)
		if err != nil {
			requireSyntaxError(t, src, err)
			return
		}
		require.Equal(t, src, u.String())
		requireVarsUnique(t, u.Vars())

		empty, _ := u.Execute(nil, Create)
		base, err := url.Parse(empty)
		require.NoError(t, err, empty)
		require.Contains(t, []string{"http", "https"}, base.Scheme)
		require.NotEmpty(t, base.Host)

		// No value, however awkward, may break the URL or move its host.
		for _, v := range []*Values{session, full} {
			for _, m := range []Mode{Create, Search} {
				got, complete := u.Execute(v, m)
				parsed, err := url.Parse(got)
				require.NoError(t, err, got)
				assert.Equal(t, base.Host, parsed.Host, got)
				assert.Equal(t, base.User.String(), parsed.User.String(), got)
				if v == full {
					assert.True(t, complete, got)
				}
			}
		}
	})
}

func FuzzFormatPhone(f *testing.F) {
	for _, s := range []string{"+12223334444", "2223334444", "(222) 333-4444", "+442079460958", "+44 (0)20 7946 0958", "+1 222 333 4444 ext. 55", "anonymous", "", "+", "00", "+999 123 456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, pf := range phoneFormats {
			for _, m := range []Mode{Create, Search} {
				got, err := FormatPhone(raw, pf, m)
				if err != nil {
					require.ErrorIs(t, err, ErrPhoneNumber)
					continue
				}
				if strings.TrimSpace(raw) == "" {
					require.Empty(t, got)
					continue
				}
				require.NotEmpty(t, got)
				if pf == PhoneE164 {
					require.Regexp(t, `^\+[1-9][0-9]{1,16}$`, got)
					// Formatting again need not give the same digits:
					// the library strips a trunk 0 after the country code
					// each time, as in +82 0..., which only nonsense
					// numbers have twice.
					_, err := FormatPhone(got, PhoneE164, m)
					require.NoError(t, err)
				}
			}
		}
		v := NewValues(Input{Phone: raw}, PhoneAutomatic)
		if strings.TrimSpace(raw) != "" {
			require.NotEmpty(t, v.Get(PhoneNumber, Search), "a phone number is never dropped")
		}
	})
}
