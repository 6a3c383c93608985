package connector

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// connectProxy is an HTTP CONNECT proxy on loopback that records the hosts it tunnels to.
type connectProxy struct {
	srv     *httptest.Server
	mu      sync.Mutex
	tunnels map[string]int
}

func newConnectProxy(t *testing.T) *connectProxy {
	p := &connectProxy{tunnels: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		dst, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		p.mu.Lock()
		p.tunnels[r.Host]++
		p.mu.Unlock()
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			dst.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() {
			_, _ = io.Copy(dst, buf)
			dst.Close()
		}()
		_, _ = io.Copy(conn, dst)
		conn.Close()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *connectProxy) hosts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tunnels)
}

// The review's finding (MEDIUM 9): the connector's transport ignored proxies. One policy now
// serves every request: the service list, the status feed, the STS and the services.
func TestClient_ProxyURLCarriesEveryRequest(t *testing.T) {
	proxy := newConnectProxy(t)
	env := newTestEnv(t, func(c *Config) { c.Proxy = Proxy{URL: proxy.srv.URL} })
	pt := patients(env.p, 1)[0]
	res, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	// The control site (service list, status feed) and the ehealth site (STS, services)
	// listen on different ports: both were reached through the proxy.
	require.GreaterOrEqual(t, proxy.hosts(), 2)

	// With a proxy that is down, nothing reaches the platform.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	before := counts(env.p, "insurability:v2") + counts(env.p, ServiceInsurability)
	cut := newTestEnv(t, func(c *Config) { c.Proxy = Proxy{URL: deadURL} })
	_, err = cut.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.Error(t, err)
	require.Equal(t, before, counts(env.p, "insurability:v2")+counts(env.p, ServiceInsurability))
}

func TestProxy_ValidateAndPrint(t *testing.T) {
	for _, p := range []Proxy{{URL: "ftp://proxy:21"}, {URL: "proxy:3128"}, {URL: "http://proxy:3128", Direct: true}} {
		c := validConfig()
		c.Proxy = p
		var ce *ConfigError
		require.ErrorAs(t, c.Validate(), &ce, p.URL)
		require.Equal(t, "Proxy.URL", ce.Field)
	}
	c := validConfig()
	c.Proxy = Proxy{URL: "http://pharmacy:s3cret@proxy.example:3128"}
	require.NoError(t, c.Validate())
	require.NotContains(t, c.Proxy.String(), "s3cret")
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, fmt.Sprintf(format, c), "s3cret", format)
	}
}

// The zero Proxy follows the environment (HTTPS_PROXY, NO_PROXY), for the client's own
// transport and NewTransport's; Direct ignores it. net/http reads the environment once per
// process, hence the child process.
func TestProxy_DefaultIsTheEnvironment(t *testing.T) {
	if os.Getenv("EHGATE_PROXY_CHILD") == "1" {
		req := httptest.NewRequest(http.MethodGet, "https://services.ehealth.fgov.be/Insurability/v2", nil)
		for _, f := range []func(*http.Request) (*url.URL, error){Proxy{}.policy(), NewTransport(nil, 0).Proxy} {
			u, err := f(req)
			require.NoError(t, err)
			require.NotNil(t, u)
			require.Equal(t, "proxy.pharmacy.example:3128", u.Host)
		}
		require.Nil(t, Proxy{Direct: true}.policy(), "no proxy whatever the environment")
		u, err := Proxy{URL: "http://other.example:8080"}.policy()(req)
		require.NoError(t, err)
		require.Equal(t, "other.example:8080", u.Host)
		excluded := httptest.NewRequest(http.MethodGet, "https://intranet.pharmacy.example/", nil)
		u, err = Proxy{}.policy()(excluded)
		require.NoError(t, err)
		require.Nil(t, u, "NO_PROXY is honoured")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProxy_DefaultIsTheEnvironment$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EHGATE_PROXY_CHILD=1", "HTTPS_PROXY=http://proxy.pharmacy.example:3128",
		"https_proxy=", "NO_PROXY=intranet.pharmacy.example", "no_proxy=")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "PASS")
}
