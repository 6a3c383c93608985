package platformtest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// plainClient is a plain net/http client trusting the platform, with its
// own connections so that a test sees fresh dials, and a short timeout.
func plainClient(t *testing.T, p *platformtest.Platform, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.CACertPool(), MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// etkMessage is an unsigned ETK request, valid for any site.
func etkMessage(t *testing.T) []byte {
	t.Helper()
	b, err := soap.Marshal(soap.NewEnvelope(etkRequest("CBE", "0809394427", "")))
	require.NoError(t, err)
	return b
}

// warm returns a client with the given timeout whose keep-alive connection
// to url's site is already open (through a request to an unrouted path,
// which no fault touches), so that the timeout measures the request, not
// the TLS handshake.
func warm(t *testing.T, p *platformtest.Platform, url string, msg []byte, timeout time.Duration) *http.Client {
	t.Helper()
	c := plainClient(t, p, 10*time.Second)
	resp, err := send(c, strings.Replace(url, "/EtkDepot/v1", "/nowhere", 1), msg) // 404, same site, no fault
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.Timeout = timeout
	return c
}

func send(c *http.Client, url string, msg []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	return c.Do(req)
}

func TestFault_EachKindAsAPlainHTTPClientSeesIt(t *testing.T) {
	p := start(t, platformtest.Config{})
	site := p.Site("ehealth")
	url := p.URL(platformtest.ServiceETK, "ehealth")
	msg := etkMessage(t)
	_, _, err := p.ETK("CBE", "0809394427", "") // built (a key generated) before any timing
	require.NoError(t, err)

	tests := []struct {
		name  string
		fault platformtest.Fault
		check func(t *testing.T, c *http.Client)
	}{
		{"hang ends in the client's timeout", platformtest.Fault{Kind: platformtest.FaultHang}, func(t *testing.T, _ *http.Client) {
			before := p.Count("ehealth", platformtest.ServiceETK, platformtest.OutcomeInjected)
			_, err := send(warm(t, p, url, msg, 300*time.Millisecond), url, msg)
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			require.True(t, ne.Timeout(), "%v", err)
			require.Eventually(t, func() bool {
				return p.Count("ehealth", platformtest.ServiceETK, platformtest.OutcomeInjected) == before+1
			}, 10*time.Second, time.Millisecond, "the request was held until the client gave up")
		}},
		{"delay answers after the delay", platformtest.Fault{Kind: platformtest.FaultDelay, Delay: 30 * time.Millisecond}, func(t *testing.T, c *http.Client) {
			begin := time.Now()
			resp, err := send(c, url, msg)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.GreaterOrEqual(t, time.Since(begin), 30*time.Millisecond)
			_, err = send(plainClient(t, p, 5*time.Millisecond), url, msg)
			require.Error(t, err, "a client with a shorter timeout gives up")
		}},
		{"drip is too slow for a short timeout", platformtest.Fault{Kind: platformtest.FaultDrip, BytesPerSecond: 200}, func(t *testing.T, _ *http.Client) {
			resp, err := send(warm(t, p, url, msg, 400*time.Millisecond), url, msg)
			require.NoError(t, err, "headers come at once")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Error(t, err)
			require.Less(t, int64(len(got)), resp.ContentLength)
			require.Greater(t, len(got), 0, "some bytes dripped")
		}},
		{"http status with an html page", platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 502, RetryAfter: 1500 * time.Millisecond}, func(t *testing.T, c *http.Client) {
			resp, err := send(c, url, msg)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusBadGateway, resp.StatusCode)
			require.Equal(t, "2", resp.Header.Get("Retry-After"))
			require.Equal(t, "text/html", resp.Header.Get("Content-Type"))
			require.Contains(t, string(b), "<h1>502 Bad Gateway</h1>")
			_, err = soap.ReadResponse(bytes.NewReader(b), soap.Limits{})
			require.Error(t, err, "not a SOAP envelope")
		}},
		{"soap fault with the injected code", platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-02002"}, func(t *testing.T, c *http.Client) {
			resp, err := send(c, url, msg)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			_, err = soap.ReadResponse(resp.Body, soap.Limits{})
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.Equal(t, "soapenv:Server", f.Code)
			require.Equal(t, []string{"SOA-02002"}, f.FaultCodes())
		}},
		{"malformed xml", platformtest.Fault{Kind: platformtest.FaultMalformed}, func(t *testing.T, c *http.Client) {
			resp, err := send(c, url, msg)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			_, err = soap.ReadResponse(resp.Body, soap.Limits{})
			require.ErrorIs(t, err, soap.ErrMalformed)
		}},
		{"huge body of the injected size, streamed", platformtest.Fault{Kind: platformtest.FaultHuge, Size: 3 << 20}, func(t *testing.T, c *http.Client) {
			resp, err := send(c, url, msg)
			require.NoError(t, err)
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, int64(3<<20), n)
			require.Equal(t, int64(3<<20), resp.ContentLength)

			resp, err = send(c, url, msg)
			require.NoError(t, err)
			defer resp.Body.Close()
			_, err = soap.ReadResponse(resp.Body, soap.Limits{MaxBytes: 1 << 20})
			require.ErrorIs(t, err, soap.ErrLimit)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := plainClient(t, p, 5*time.Second)
			site.Inject(platformtest.ServiceETK, tt.fault)
			require.Equal(t, tt.fault.Kind, site.Fault("etk").Kind)
			tt.check(t, c)
			site.Clear(platformtest.ServiceETK)

			resp, err := send(c, url, msg)
			require.NoError(t, err, "cleared")
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
}

func TestFault_RefusedSiteResetsConnectionsAndKeepsItsPort(t *testing.T) {
	p := start(t, platformtest.Config{})
	site := p.Site("mycarenet")
	url := p.URL(platformtest.ServiceETK, "mycarenet")
	c := plainClient(t, p, 2*time.Second)
	msg := etkMessage(t)

	resp, err := send(c, url, msg) // leaves an idle keep-alive connection
	require.NoError(t, err)
	resp.Body.Close()

	site.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
	_, err = send(c, url, msg)
	require.Error(t, err, "the idle connection was cut too")
	_, err = send(plainClient(t, p, 2*time.Second), url, msg)
	require.True(t, errors.Is(err, syscall.ECONNRESET), "a new connection is reset before TLS: %v", err)
	require.False(t, os.IsTimeout(err), "%v", err)
	require.Equal(t, bcp.Failure, bcp.DefaultClassifier{}.Classify(err), "a transport failure for bcp: %v", err)
	// The port stays the site's while it refuses: nobody else can take it.
	ln, err := net.Listen("tcp", site.Addr())
	if err == nil {
		ln.Close()
	}
	require.Error(t, err, "the refusing site still holds its port")
	// The other site is unaffected.
	resp, err = send(c, p.URL(platformtest.ServiceETK, "ehealth"), msg)
	require.NoError(t, err)
	resp.Body.Close()

	require.Equal(t, platformtest.FaultRefuse, site.Fault("").Kind)
	addr := site.Addr()
	site.Clear("")
	require.Equal(t, addr, site.Addr())
	resp, err = send(plainClient(t, p, 2*time.Second), url, msg)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Refusing and clearing again and again never loses the site.
	for i := range 20 {
		site.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
		_, err = send(c, url, msg)
		require.Error(t, err, "round %d refused", i)
		site.Clear("")
		resp, err = send(c, url, msg)
		require.NoError(t, err, "round %d cleared", i)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

func TestFault_RefusingOneServiceResetsItsConnectionsOnly(t *testing.T) {
	p := start(t, platformtest.Config{})
	site := p.Site("ehealth")
	site.Inject(platformtest.ServiceETK, platformtest.Fault{Kind: platformtest.FaultRefuse})
	c := plainClient(t, p, 2*time.Second)
	_, err := send(c, p.URL(platformtest.ServiceETK, "ehealth"), etkMessage(t))
	require.Error(t, err)
	require.False(t, os.IsTimeout(err))
	resp, err := send(c, p.URL(platformtest.ServiceInsurability, "ehealth"), etkMessage(t))
	require.NoError(t, err, "another service of the site still answers")
	resp.Body.Close()
}

func TestFault_HangIsReleasedByClearAndByClose(t *testing.T) {
	p, err := platformtest.Start(platformtest.Config{})
	require.NoError(t, err)
	defer p.Close()
	site := p.Site("ehealth")
	url := p.URL(platformtest.ServiceETK, "ehealth")
	site.Inject("", platformtest.Fault{Kind: platformtest.FaultHang})

	released := make(chan int, 1)
	go func() {
		resp, err := send(p.HTTPClient(), url, etkMessage(t))
		if err != nil {
			released <- -1
			return
		}
		resp.Body.Close()
		released <- resp.StatusCode
	}()
	require.Eventually(t, func() bool { return inFlight(p) }, 10*time.Second, time.Millisecond)
	site.Clear("")
	require.Equal(t, http.StatusOK, <-released, "a cleared hang answers normally")

	site.Inject("", platformtest.Fault{Kind: platformtest.FaultHang})
	errc := make(chan error, 1)
	go func() {
		_, err := send(p.HTTPClient(), url, etkMessage(t))
		errc <- err
	}()
	require.Eventually(t, func() bool { return inFlight(p) }, 10*time.Second, time.Millisecond)
	p.Close()
	require.Error(t, <-errc, "closing the platform ends a hanging request")
}

// inFlight reports whether the ehealth site holds a hanging request.
func inFlight(p *platformtest.Platform) bool { return p.Site("ehealth").Waiting() > 0 }

func TestFault_ValidatesAndParsesKinds(t *testing.T) {
	for _, k := range []platformtest.FaultKind{platformtest.FaultRefuse, platformtest.FaultHang, platformtest.FaultDelay, platformtest.FaultDrip,
		platformtest.FaultHTTPStatus, platformtest.FaultSOAP, platformtest.FaultMalformed, platformtest.FaultHuge,
		platformtest.FaultBadSTSSignature, platformtest.FaultExpiredToken, platformtest.FaultClockSkew} {
		got, err := platformtest.ParseFaultKind(k.String())
		require.NoError(t, err)
		require.Equal(t, k, got)
	}
	_, err := platformtest.ParseFaultKind("meltdown")
	require.Error(t, err)
	require.Error(t, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 42}.Validate())
	require.Error(t, platformtest.Fault{Kind: platformtest.FaultDelay, Delay: -time.Second}.Validate())
	_, err = platformtest.CanonicalService("uddi:ehealth-fgov-be:business:insurability:v2")
	require.NoError(t, err)
	_, err = platformtest.CanonicalService("kgss")
	require.Error(t, err)
}

func TestClose_EndsDripsAndHugeBodiesInFlight(t *testing.T) {
	for _, f := range []platformtest.Fault{
		{Kind: platformtest.FaultDrip, BytesPerSecond: 1},
		{Kind: platformtest.FaultHuge, Size: 1 << 40}, // a terabyte, never held
	} {
		t.Run(f.Kind.String(), func(t *testing.T) {
			p, err := platformtest.Start(platformtest.Config{})
			require.NoError(t, err)
			defer p.Close()
			p.Site("ehealth").Inject("", f)
			c := plainClient(t, p, 10*time.Second)
			resp, err := send(c, p.URL("etk", "ehealth"), etkMessage(t))
			require.NoError(t, err)
			defer resp.Body.Close()
			var one [1]byte
			_, err = io.ReadFull(resp.Body, one[:]) // the body is flowing
			require.NoError(t, err)
			p.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			require.Error(t, err, "the answer is cut when the platform closes")
		})
	}
}
