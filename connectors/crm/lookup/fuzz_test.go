package lookup_test

import (
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmsync/crmsync"
	"github.com/crmsync/crmsync/connectors/crm/lookup"
)

// FuzzCompile checks that the parser never panics, that it refuses input
// only with a proper error, and that a template it accepts renders, for any
// value, a URL net/url accepts whose scheme and host the value cannot
// change.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		"https://crm.example.com/find?ani={ANI}&cuid={CUID}&email={EMAIL}",
		"https://crm.example.com/{MENU_PATH}/{MENU_ID}?c={CHANNEL}&t={TYPE}#/x/{EMAIL}",
		"http://[::1]:8080/a%20b?x=%7B&y={ANI}&&#",
		"https://user@crm.example.com?{ANI}",
		"https://crm.example.com{ANI}",
		"{TYPE}://x/",
		"https://x/%4{ANI}",
		"https://x/{ANI",
		"https://x/}",
		"https://x/{}",
		"HTTPS://X/?q={ACCOUNT_ID}",
		"/relative/{ANI}",
		"",
	} {
		f.Add(seed, "a&b=c#d/e?f g+h%25ö\xff")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		full := lookup.Session{
			ANI: value, CUID: value, Email: value, MenuPath: value, MenuID: value,
			Channel: value, Type: value, AccountID: value, PhoneNumber: value,
		}
		// The two sets of variables differ, so the template goes through
		// both kinds of field.
		fields := []struct {
			name   string
			cfg    lookup.Config
			render func(*lookup.URLs, lookup.Session) string
		}{
			{"ivr_url", lookup.Config{IVR: tmpl}, (*lookup.URLs).Lookup},
			{"open_custom_url.q", lookup.Config{OpenCustom: map[string]string{"q": tmpl}},
				func(u *lookup.URLs, s lookup.Session) string { return u.OpenCustom("q", s) }},
		}
		for _, fl := range fields {
			u, err := lookup.Compile(fl.cfg)
			if err != nil {
				var e *crmsync.Error
				require.True(t, errors.As(err, &e), "error is %T", err)
				assert.Equal(t, crmsync.EINVALID, e.Code)
				assert.Equal(t, fl.name, e.Field)
				assert.NotEmpty(t, e.Message)
				continue
			}
			if tmpl == "" {
				assert.Empty(t, fl.render(u, full))
				continue
			}
			base, err := url.Parse(fl.render(u, lookup.Session{}))
			require.NoError(t, err)
			raw := fl.render(u, full)
			got, err := url.Parse(raw)
			require.NoError(t, err, "template %q rendered %q", tmpl, raw)
			assert.Contains(t, []string{"http", "https"}, got.Scheme)
			assert.NotEmpty(t, got.Host)
			assert.Equal(t, base.Scheme, got.Scheme)
			assert.Equal(t, base.Host, got.Host)
			assert.Equal(t, base.User.String(), got.User.String())
		}
	})
}
