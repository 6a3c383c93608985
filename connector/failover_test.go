package connector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
)

// A proxy or load balancer in front of the primary site answering an HTML 302, 403 or 404
// is the endpoint's failure: the call fails over to the backup site, which answers live
// (issue 17 item 2; switching rule 1, "an HTTP error whose body is not a SOAP envelope").
func TestClient_ProxyErrorPagesFailOver(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env := newTestEnv(t)
			pt := patients(env.p, 1)[0]
			env.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: status})
			res, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
			require.NoError(t, err)
			require.Equal(t, SourceLive, res.Source)
			require.False(t, res.Degraded)
			require.Contains(t, res.Endpoint, env.p.URL(ServiceInsurability, "mycarenet"))
		})
	}
}

// No call to the platform follows a redirect, whatever client the vendor gives (issue 14
// item 3): a 307 would re-post the signed request, token and SSIN included, to another
// host, a 308 to http:// in clear. The redirect is the primary's failure, the backup answers.
func TestClient_VendorClientNeverFollowsRedirects(t *testing.T) {
	var trapped atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		trapped.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer trap.Close()
	p, id := testPlatform(t)
	// The vendor's client follows every redirect (CheckRedirect nil).
	vendor := &http.Client{Transport: NewTransport(p.CACertPool(), 0)}
	cfg := testConfig(t, p, id)
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			cfg.CacheDir = t.TempDir()
			c, err := New(cfg, WithHTTPClient(vendor))
			require.NoError(t, err)
			defer c.Close()
			pt := patients(p, 1)[0]
			defer p.Site("ehealth").Clear("")
			// The STS (one endpoint) redirects: no token, and the signed request went nowhere.
			p.Site("ehealth").Inject(platformtest.ServiceSTS, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: status, Location: trap.URL + "/sts"})
			_, err = c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
			var se *bcp.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, status, se.StatusCode)
			require.ErrorIs(t, err, bcp.ErrUnavailable)
			p.Site("ehealth").Clear(platformtest.ServiceSTS)

			// The primary insurability endpoint redirects: the backup answers.
			p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: status, Location: trap.URL + "/ins"})
			res, err := c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
			require.NoError(t, err)
			require.Equal(t, SourceLive, res.Source)
			require.Contains(t, res.Endpoint, p.URL(ServiceInsurability, "mycarenet"))
			require.Zero(t, trapped.Load(), "a redirect was followed")
			require.Nil(t, vendor.CheckRedirect, "the vendor's client is left as it was")
		})
	}
}
