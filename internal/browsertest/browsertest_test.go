package browsertest

import (
	"io"
	"net/http"
	"net/http/httptest"
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
