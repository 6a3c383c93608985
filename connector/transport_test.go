package connector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewTransport_VerifiesCertificatesAndRefusesOldTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()

	untrusted := &http.Client{Transport: NewTransport(x509.NewCertPool(), time.Second)}
	_, err := untrusted.Get(srv.URL)
	var uae x509.UnknownAuthorityError
	require.ErrorAs(t, err, &uae, "a server outside the roots is refused")

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	trusted := &http.Client{Transport: NewTransport(roots, time.Second)}
	resp, err := trusted.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()

	old := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	old.StartTLS()
	defer old.Close()
	roots.AddCert(old.Certificate())
	_, err = trusted.Get(old.URL)
	require.Error(t, err, "TLS 1.1 is refused")
}

// writeCounter counts the writes on a connection.
type writeCounter struct {
	net.Conn
	writes *atomic.Int64
}

func (w writeCounter) Write(b []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(b)
}

// A signed request (headers and a ~11 KiB body) leaves in one write: no 4 KiB pieces, each
// a TLS record and a system call.
func TestNewTransport_SendsARequestInOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	tr := NewTransport(nil, time.Second)
	defer tr.CloseIdleConnections()
	tr.Proxy = nil
	var writes atomic.Int64
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCounter{c, &writes}, nil
	}
	body := bytes.Repeat([]byte("x"), 11<<10)
	for range 2 {
		before := writes.Load()
		resp, err := (&http.Client{Transport: tr}).Post(srv.URL, "text/xml", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.EqualValues(t, 1, writes.Load()-before)
	}
}
