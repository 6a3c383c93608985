package console_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/console"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/platformtest"
)

var updateScreenshot = flag.Bool("screenshot", false, "write the console's screenshot to docs/console.png")

// chromium finds the browser: $EHGATE_CHROMIUM, else chromium or chromium-browser on PATH.
func chromium() string {
	if p := os.Getenv("EHGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts a headless chromium with a fresh profile, no network of its own.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium()
	if path == "" {
		t.Skip("console browser test skipped: no chromium found (install Debian's chromium, or set EHGATE_CHROMIUM)")
	}
	// Not t.TempDir: chromium's helper processes may still write to the profile for a moment
	// after the browser exits, which would fail TempDir's cleanup.
	profile, err := os.MkdirTemp("", "ehgate-console-chromium-")
	require.NoError(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile), chromedp.WindowSize(1360, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 120*time.Second) // a bound for a stuck browser
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	require.NoError(t, chromedp.Run(ctx), "starting %s", path)
	return ctx
}

func asOperator(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		return network.SetCookie("operator", name).WithDomain("127.0.0.1").WithPath("/").Do(ctx)
	})
}

func modeCell(service string) string {
	return fmt.Sprintf(`tr.service[data-service=%q] .mode`, service)
}

// textOf reads an element's text in one step of the page's script: the live part of the
// page is replaced every Refresh, so a node found by one call may be gone by the next.
func textOf(selector string, out *string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(function(){ var e = document.querySelector(%q); return e ? e.textContent.trim() : ""; })()`, selector), out)
}

// textWhen waits until an element's text contains want and reads that text in the same
// evaluation, so that a refresh of the page between the wait and the read cannot blank it.
func textWhen(selector, want string, out *string) chromedp.Action {
	return chromedp.Poll(fmt.Sprintf(`(function(){ var e = document.querySelector(%q); var t = e ? e.textContent.trim() : ""; return t.indexOf(%q) >= 0 ? t : false; })()`, selector, want),
		out, chromedp.WithPollingInterval(50*time.Millisecond))
}

// eventually runs a until it succeeds (an error such as "target navigated" while the page
// changes is tried again), within the browser context's bound.
func eventually(t *testing.T, ctx context.Context, a chromedp.Action) {
	t.Helper()
	var err error
	for ctx.Err() == nil {
		if err = chromedp.Run(ctx, a); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("browser step never succeeded: %v", err)
}

// waitText waits until an element's text is want.
func waitText(selector, want string) chromedp.Action {
	return chromedp.Poll(fmt.Sprintf(`(function(){ var e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, selector, want),
		nil, chromedp.WithPollingInterval(50*time.Millisecond))
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// TestConsole_InHeadlessChromium drives the console in a real browser: the page loads and
// shows the modes, follows a change made elsewhere without a reload, an authorised operator
// activates fallback with a reason and the client's mode changes, an unauthorised one sees
// no action and is refused, and a forged cross-site POST without the CSRF token is refused.
func TestConsole_InHeadlessChromium(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, console.Config{Authorize: byCookie, Refresh: 200 * time.Millisecond})
	pts := clienttest.Patients(e.p, 3)
	for _, pt := range pts {
		_, err := e.c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	const generic, etk = connector.ServiceGenericInsurability, connector.ServiceETK

	// Alice loads the page: every service is normal.
	var mode, operator string
	require.NoError(t, chromedp.Run(ctx, asOperator("alice"),
		chromedp.Navigate(e.url),
		chromedp.WaitVisible(`#status`, chromedp.ByQuery),
		textOf(modeCell(ins), &mode),
		textOf(`#operator`, &operator)))
	require.Equal(t, "normal", mode)
	require.Equal(t, "alice", operator)

	// A change made elsewhere shows without reloading the page.
	require.NoError(t, e.c.ActivateFallback(generic, "changed outside the page"))
	require.NoError(t, chromedp.Run(ctx, waitText(modeCell(generic), "fallback")))
	require.NoError(t, e.c.EndFallback(generic))

	// Alice activates fallback for insurability with a reason.
	require.NoError(t, chromedp.Run(ctx,
		chromedp.SetValue(`#activate-service`, ins, chromedp.ByQuery),
		chromedp.SendKeys(`#reason`, "planned maintenance", chromedp.ByQuery),
		chromedp.Click(`#activate-submit`, chromedp.ByQuery)))
	// The form's POST, its redirect and the new page: a step may meet the navigation.
	eventually(t, ctx, textWhen(modeCell(ins), "fallback", &mode))
	require.Equal(t, "fallback", mode)
	m, cause := e.c.Mode(ins)
	require.Equal(t, connector.ModeFallback, m, "the client's mode changed")
	require.Contains(t, cause, "planned maintenance (by alice)")
	var audit string // read as the mode cell: the live part may be replaced between two steps
	eventually(t, ctx, textWhen(`#audit`, "planned maintenance", &audit))
	require.Contains(t, audit, "alice")
	require.Contains(t, audit, "planned maintenance")

	if *updateScreenshot {
		// eHealthBox refuses (it has no BCP endpoint): the message is queued and the console
		// shows the error and the outbox.
		e.p.Site("ehealth").Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503})
		r, err := e.c.SendMessage(context.Background(), testMessage("claim"))
		require.NoError(t, err)
		require.True(t, r.Queued)
		var png []byte
		require.NoError(t, chromedp.Run(ctx, chromedp.Sleep(600*time.Millisecond), chromedp.FullScreenshot(&png, 100)))
		require.NoError(t, os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644))
	}
	var page string
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`document.documentElement.outerHTML`, &page)))
	for _, pt := range pts {
		require.NotContains(t, page, pt.SSIN, "no patient on the page")
	}

	// A forged POST from another site's page, without the CSRF token, is refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%sfallback/activate">
<input name="service" value="%s"><input name="reason" value="forged"></form>
<script>document.getElementById("f").submit()</script>`, e.url, etk)
	}))
	defer evil.Close()
	var body string
	_ = chromedp.Run(ctx, chromedp.Navigate(evil.URL)) // the page navigates away at once: judged below
	eventually(t, ctx, textWhen(`body`, "forbidden", &body))
	require.Contains(t, body, "CSRF")
	m, _ = e.c.Mode(etk)
	require.NotEqual(t, connector.ModeFallback, m, "the forged POST changed nothing")

	// Mallory is not authorised: no action on the page, and a POST with alice's token is refused.
	var noForms bool
	var status int
	token := csrfOf(t, page)
	require.NoError(t, chromedp.Run(ctx, asOperator("mallory"),
		chromedp.Navigate(e.url),
		chromedp.WaitVisible(`#readonly`, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("activate") === null && document.querySelector('input[name=csrf]') === null`, &noForms),
		chromedp.Evaluate(fmt.Sprintf(`fetch("fallback/activate", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
			body: "service=%s&reason=mine&csrf=%s"}).then(r => r.status)`, etk, token), &status, awaitPromise)))
	require.True(t, noForms)
	require.Equal(t, http.StatusForbidden, status)
	m, _ = e.c.Mode(etk)
	require.NotEqual(t, connector.ModeFallback, m)
	require.False(t, strings.Contains(page, "mine"))
}
