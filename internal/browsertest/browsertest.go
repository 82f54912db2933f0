// Package browsertest gives a test a real browser: Debian's headless
// Chromium, driven over the DevTools protocol with chromedp. Outside CI a
// machine without Chromium skips the test; under CI (CI set) it fails,
// because .ci/run installs the package.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

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
