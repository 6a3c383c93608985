package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"software.sslmate.com/src/go-pkcs12"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPlatformsim_StartsPrintsURLsAndObeysControlCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-seed", "7", "-patients", "50"}, pw)
		pw.Close()
	}()
	lines := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		require.GreaterOrEqual(t, len(f), 2, sc.Text())
		lines[f[0]] = f[1]
		if f[0] == "control" {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	control := lines["control"]
	require.True(t, strings.HasPrefix(control, "http://127.0.0.1:"), "%v", lines)

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	p12, err := os.ReadFile(filepath.Join(dir, "pharmacy.p12"))
	require.NoError(t, err)
	_, cert, _, err := pkcs12.DecodeChain(p12, "platformsim")
	require.NoError(t, err)
	require.Equal(t, "Platformsim Pharmacy", cert.Subject.CommonName)

	shaURL := lines["servicelist"] + ".sha2"
	sha := func() string {
		resp, err := client.Get(shaURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	control1 := func(path string, q url.Values) (int, string) {
		resp, err := http.Post(control+path+"?"+q.Encode(), "text/plain", nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Refuse the whole ehealth site, then bring it back.
	site := lines["site/ehealth"]
	status, body := control1("/fault", url.Values{"site": {"ehealth"}, "kind": {"refuse"}})
	require.Equal(t, http.StatusOK, status, body)
	_, err = client.Get(site + "/EtkDepot/v1")
	require.True(t, errors.Is(err, syscall.ECONNRESET), "a refusing site resets connections: %v", err)
	status, _ = control1("/clear", url.Values{"site": {"ehealth"}})
	require.Equal(t, http.StatusOK, status)
	resp, err := client.Get(site + "/EtkDepot/v1")
	require.NoError(t, err)
	resp.Body.Close()

	// A 503 on one service.
	status, body = control1("/fault", url.Values{"site": {"mycarenet"}, "service": {"insurability"}, "kind": {"http-status"}, "status": {"503"}})
	require.Equal(t, http.StatusOK, status, body)
	resp, err = client.Post(lines["site/mycarenet"]+"/ehealth/bcp/insurability", "text/xml", strings.NewReader("<x/>"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// Service list change.
	before := sha()
	status, body = control1("/endpoint", url.Values{"site": {"ehealth"}, "service": {"insurability"}, "status": {"inactive"}})
	require.Equal(t, http.StatusOK, status, body)
	require.NotEqual(t, before, sha())

	// The platform moves insurability to the BCP site, and back.
	before = sha()
	status, body = control1("/move", url.Values{"site": {"mycarenet"}, "service": {"insurability"}})
	require.Equal(t, http.StatusOK, status, body)
	require.NotEqual(t, before, sha())
	status, body = control1("/restore", url.Values{"service": {"insurability"}})
	require.Equal(t, http.StatusOK, status, body)
	status, _ = control1("/move", url.Values{"site": {"mycarenet"}, "service": {"sts"}})
	require.Equal(t, http.StatusBadRequest, status, "the STS has no BCP endpoint")

	// Bad commands are refused with a reason.
	for _, q := range []url.Values{
		{"site": {"nowhere"}, "kind": {"hang"}},
		{"site": {"ehealth"}, "kind": {"meltdown"}},
		{"site": {"ehealth"}, "service": {"servicelist"}, "kind": {"hang"}},
		{"site": {"ehealth"}, "kind": {"delay"}, "delay": {"soon"}},
	} {
		status, body = control1("/fault", q)
		require.Equal(t, http.StatusBadRequest, status, body)
	}
	status, _ = control1("/endpoint", url.Values{"site": {"mycarenet"}, "service": {"sts"}, "status": {"inactive"}})
	require.Equal(t, http.StatusBadRequest, status)

	status, body = control1("/scenario", url.Values{"name": {"outage"}, "unit": {"1ms"}, "wait": {"true"}})
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, 4, strings.Count(body, "\n"), body)
	require.Contains(t, body, "platform restored")
	status, _ = control1("/scenario", url.Values{"name": {"outage"}, "unit": {"1h"}}) // stopped by the shutdown
	require.Equal(t, http.StatusOK, status)

	resp, err = http.Get(control + "/counters")
	require.NoError(t, err)
	var counters struct {
		Requests []struct {
			Site, Service, Outcome string
			Count                  int
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&counters))
	resp.Body.Close()
	require.NotEmpty(t, counters.Requests)

	cancel()
	require.NoError(t, <-done)
	http.DefaultClient.CloseIdleConnections()
}

func TestPlatformsim_RefusesANonLoopbackControlAddress(t *testing.T) {
	err := run(context.Background(), []string{"-dir", t.TempDir(), "-control", "0.0.0.0:0"}, io.Discard)
	require.ErrorContains(t, err, "loopback")
}

func TestPlatformsim_DefaultDirIsTemporaryAndRemovedAtExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-patients", "10"}, pw)
		pw.Close()
	}()
	var ca string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "ca" {
			ca = f[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	_, err := os.Stat(ca)
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)
	_, err = os.Stat(filepath.Dir(ca))
	require.True(t, os.IsNotExist(err), "removed at exit")
}
