// Package browsertest gives a test a real browser: Debian's headless
// Chromium, driven over the DevTools protocol with chromedp. Outside CI a
// machine without Chromium skips the test; under CI (CI set) it fails,
// because .ci/run installs the package.
package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// New starts a headless Chromium with its own empty profile and returns a
// browser context that lives until the test ends, bounded by timeout.
func New(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	bin := Path
	if _, err := os.Stat(bin); err != nil {
		found, lerr := exec.LookPath("chromium")
		if lerr != nil {
			if os.Getenv("CI") != "" {
				tb.Fatalf("%s is missing; CI must install the chromium package", Path)
			}
			tb.Skipf("%s is missing; install it with `apt-get install chromium` to run the browser tests", Path)
		}
		bin = found
	}
	opts := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()),
		// The machine has no internet: without these Chromium keeps
		// trying to reach Google's services.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, so a failure to launch is reported here.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("browsertest: start %s: %v", bin, err)
	}
	return ctx
}

// Problems collects what went wrong inside the pages of a browser
// context, same-origin frames included: uncaught exceptions,
// console.error calls, and the browser's own error entries (a resource
// that failed to load, a script or a connection that a
// Content-Security-Policy blocked). A test asserts it stayed empty, which
// catches a broken page whose visible part happens to look right.
type Problems struct {
	mu    sync.Mutex
	lines []string
}

// Watch starts collecting ctx's problems; ctx comes from New. Call it
// before navigating, so the page's first problems are seen too.
func Watch(tb testing.TB, ctx context.Context) *Problems {
	tb.Helper()
	p := &Problems{}
	err := chromedp.Listen(ctx, func(ev any) {
		// Called on the browser connection's reading goroutine: record
		// and return, nothing more.
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			p.add(fmt.Sprintf("exception at %s:%d: %s", withoutQuery(d.URL), d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type != runtime.ConsoleAPICalledTypeError {
				return
			}
			var parts []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.add("console.error: " + strings.Join(parts, " "))
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			if e.Level != cdplog.EntryLevelError {
				return
			}
			p.add(fmt.Sprintf("%s error: %s (%s)", e.Source, e.Text, withoutQuery(e.URL)))
		}
	})
	if err != nil {
		tb.Fatalf("browsertest: watch the page: %v", err)
	}
	return p
}

// withoutQuery drops a URL's query, where pages carry their tokens, so
// none reaches the test log.
func withoutQuery(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery = ""
	return u.String()
}

func (p *Problems) add(line string) {
	p.mu.Lock()
	p.lines = append(p.lines, line)
	p.mu.Unlock()
}

// List returns the problems seen so far, oldest first.
func (p *Problems) List() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}
