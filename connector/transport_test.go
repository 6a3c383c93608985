package connector

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
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
