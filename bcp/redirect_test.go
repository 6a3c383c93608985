package bcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
)

// redirector answers every request with status and a Location on target, which counts the
// requests that reach it.
func redirector(t *testing.T, status int) (from *httptest.Server, reached *atomic.Int64) {
	reached = new(atomic.Int64)
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(target.Close)
	from = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, status)
	}))
	t.Cleanup(from.Close)
	return from, reached
}

// The Loader and the Poller never follow a redirect, even with a vendor's client that does
// (issue 14 item 3): the fetch fails with the 3xx and nothing is read from elsewhere.
func TestLoaderAndPoller_NeverFollowRedirects(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		from, reached := redirector(t, status)
		vendor := from.Client() // CheckRedirect nil: follows up to 10 redirects
		l, err := bcp.NewLoader(bcp.LoaderConfig{BaseURL: from.URL + "/servicelist", Verify: func([]byte) error { return nil }},
			bcp.WithHTTPClient(vendor))
		require.NoError(t, err)
		_, err = l.Refresh(context.Background())
		var fe *bcp.FetchError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, status, fe.StatusCode)
		require.Nil(t, l.Current())
		require.NoError(t, l.Close())

		p, err := bcp.NewPoller(bcp.PollerConfig{URL: from.URL + "/api/components"}, bcp.WithHTTPClient(vendor))
		require.NoError(t, err)
		_, err = p.Refresh(context.Background())
		require.ErrorAs(t, err, &fe)
		require.Equal(t, status, fe.StatusCode)
		require.Nil(t, p.Current())
		require.NoError(t, p.Close())

		require.Zero(t, reached.Load(), "status %d was followed", status)
		require.Nil(t, vendor.CheckRedirect, "the vendor's client is left as it was")
	}
}
