package templating

import (
	"bytes"
	"encoding/json"
	"testing"
)

func stdJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "new\nline\ttab\r\b\f", "\x00\x01\x1f\x7f",
		"Zoë 日本 🎉", "<html>&amp;</html>", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "/slash#hash?q=1&x",
	} {
		if got, want := string(AppendJSONString(nil, s)), stdJSON(s); got != want {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("hello")
	f.Add("\x00\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendJSONString(nil, s)), stdJSON(s); got != want {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
