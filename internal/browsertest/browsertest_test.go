package browsertest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The browser really runs pages: a script changes the title.
func TestBrowserRunsScripts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><title>before</title><script>document.title = "after " + (6*7)</script>`)
	}))
	defer srv.Close()
	ctx := New(t, 30*time.Second)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL)))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	assert.Equal(t, "after 42", title)
}

// Watch sees an uncaught exception, a console.error and a fetch that the
// page's Content-Security-Policy blocks; a clean page leaves it empty.
func TestWatch(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/clean", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, `<!doctype html><link rel="icon" href="data:,"><title>clean</title><script>console.log("fine")</script>`)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'")
		_, _ = io.WriteString(w, `<!doctype html><title>broken</title><script>
console.error("saw-console-error");
fetch("/elsewhere").catch(() => {});
setTimeout(() => { document.title = "done"; throw new Error("saw-exception"); }, 0);
</script>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := New(t, 30*time.Second)
	p := Watch(t, ctx)

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/clean")))
	title, err := chromedp.Run(ctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "clean", title)
	// The browser reports a problem as it happens; a page that reached its
	// title after the scripts ran has had its chance.
	assert.Empty(t, p.List())

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/broken")))
	want := []string{"saw-console-error", "saw-exception", "Content Security Policy"}
	deadline := time.Now().Add(20 * time.Second)
	for !seesAll(p.List(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // a polling interval, not an assertion
	}
	got := strings.Join(p.List(), "\n")
	for _, w := range want {
		assert.Contains(t, got, w)
	}
}

func seesAll(lines, want []string) bool {
	all := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			return false
		}
	}
	return true
}
