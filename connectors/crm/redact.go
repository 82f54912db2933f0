package crm

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

const redactedMark = "[REDACTED]"

// maxSeenTokens bounds how many past OAuth tokens are remembered for
// redaction; older ones expired long ago.
const maxSeenTokens = 32

// redactor replaces every known secret, and the usual encodings of it, with
// a mark. Configured secrets are fixed; OAuth tokens are added as they are
// seen.
type redactor struct {
	mu     sync.RWMutex
	fixed  []string
	tokens []string
	r      *strings.Replacer
}

func newRedactor(secrets ...string) *redactor {
	r := &redactor{}
	for _, s := range secrets {
		r.fixed = append(r.fixed, variants(s)...)
	}
	r.rebuild()
	return r
}

// variants lists s as it may appear in a URL, a form, a JSON string or a
// basic auth header.
func variants(s string) []string {
	if s == "" {
		return nil
	}
	v := []string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s))}
	if b, err := json.Marshal(s); err == nil {
		v = append(v, string(b[1:len(b)-1]))
	}
	return v
}

func (r *redactor) rebuild() {
	all := slices.Concat(r.fixed, r.tokens)
	// Longer patterns first, so a secret that contains another is removed whole.
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	all = slices.Compact(all)
	if len(all) == 0 {
		r.r = nil
		return
	}
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, redactedMark)
	}
	r.r = strings.NewReplacer(pairs...)
}

// addToken remembers a token's access and refresh values.
func (r *redactor) addToken(t *oauth2.Token) {
	if t == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range []string{t.AccessToken, t.RefreshToken} {
		if s == "" || slices.Contains(r.tokens, s) {
			continue
		}
		r.tokens = append(r.tokens, variants(s)...)
		changed = true
	}
	if !changed {
		return
	}
	if n := len(r.tokens); n > maxSeenTokens*5 {
		r.tokens = slices.Clone(r.tokens[n-maxSeenTokens*5:])
	}
	r.rebuild()
}

func (r *redactor) String(s string) string {
	r.mu.RLock()
	rep := r.r
	r.mu.RUnlock()
	if rep == nil || s == "" {
		return s
	}
	return rep.Replace(s)
}

// Error returns err's text, redacted.
func (r *redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

// wrapError keeps err's chain (for errors.Is and As) but redacts the text
// it prints, and the URL of a *url.Error, which is the likely carrier.
func (r *redactor) wrapError(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue == err {
		err = &url.Error{Op: ue.Op, URL: r.String(ue.URL), Err: ue.Err}
	}
	return &redactedError{msg: r.Error(err), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
