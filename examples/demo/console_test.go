package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is the demo's output, read while the demo writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

var liveCalls = regexp.MustCompile(`(?m)^ehgate_calls_total\{[^}]*operation="insurability",outcome="live"[^}]*\} (\d+)`)

// TestConsole_DemoServesConsoleAndMetrics: with -console the demo prints the console's and
// the metrics' URLs and serves them while the morning runs: the page shows the services'
// modes, and a scrape counts the live insurability calls made so far.
func TestConsole_DemoServesConsoleAndMetrics(t *testing.T) {
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-duration=4s", "-seed=5", "-console=127.0.0.1:0"}, &out, &out)
	}()
	urlRE := regexp.MustCompile(`operator console: (\S+)\n.*metrics: +(\S+)\n`)
	var consoleURL, metricsURL string
	deadline := time.Now().Add(60 * time.Second) // a bound for a stuck machine
	for consoleURL == "" {
		require.True(t, time.Now().Before(deadline), "no URLs printed:\n%s", out.String())
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			consoleURL, metricsURL = m[1], m[2]
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.True(t, strings.HasPrefix(consoleURL, "http://127.0.0.1:"))

	page := fetch(t, consoleURL)
	for !strings.Contains(page, `data-service="insurability:v2"`) { // once the service list is in
		require.True(t, time.Now().Before(deadline), "the console never showed insurability:\n%s", page)
		time.Sleep(20 * time.Millisecond)
		page = fetch(t, consoleURL)
	}
	require.Contains(t, page, "operator <b id=\"operator\">demo</b>")
	live := 0
	for live == 0 {
		require.True(t, time.Now().Before(deadline), "no live insurability call counted")
		for _, m := range liveCalls.FindAllStringSubmatch(fetch(t, metricsURL), -1) {
			n, _ := strconv.Atoi(m[1])
			live += n
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, live)
	require.Equal(t, 0, <-done, "demo failed:\n%s", out.String())
	_, err := http.Get(metricsURL)
	require.Error(t, err, "the admin server stops with the morning")
}
