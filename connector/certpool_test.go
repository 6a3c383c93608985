package connector_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
)

// testCA is a CA made for one test, with a leaf it issued.
type testCA struct {
	cert, leaf *x509.Certificate
}

func newTestCA(t *testing.T, name string, notBefore, notAfter time.Time) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " leaf"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err = x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	leafCert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return testCA{cert: caCert, leaf: leafCert}
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// verifies reports whether pool verifies leaf at time at (any key usage).
func verifies(pool *x509.CertPool, leaf *x509.Certificate, at time.Time) error {
	_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

func TestCertPoolFromPEMFiles_LoadsBundlesAndFiles(t *testing.T) {
	now := time.Now()
	a := newTestCA(t, "TLS CA", now.Add(-time.Hour), now.Add(time.Hour))
	b := newTestCA(t, "STS CA", now.Add(-time.Hour), now.Add(time.Hour))
	c := newTestCA(t, "list CA", now.Add(-time.Hour), now.Add(time.Hour))
	other := newTestCA(t, "not given", now.Add(-time.Hour), now.Add(time.Hour))
	dir := t.TempDir()
	// openssl x509 -text writes text before the block; several CAs in one file.
	bundle := writeFile(t, dir, "bundle.pem", append(append([]byte("subject=CN = TLS CA\n"), pemOf(a.cert)...), pemOf(b.cert)...))
	single := writeFile(t, dir, "list-ca.pem", pemOf(c.cert))

	pool, err := connector.CertPoolFromPEMFiles(bundle, single)
	require.NoError(t, err)
	for _, ca := range []testCA{a, b, c} {
		require.NoError(t, verifies(pool, ca.leaf, now), ca.cert.Subject.CommonName)
	}
	require.Error(t, verifies(pool, other.leaf, now), "a CA not in the files is not trusted")
}

// The platform's real certificates, although expired, are loaded: a CA file is trust, and the
// dates are checked at each verification, where an expired chain is refused.
func TestCertPoolFromPEMFiles_RealEHealthCertificates(t *testing.T) {
	files := []string{
		filepath.Join("testdata", "cafiles", "ehealth-servicelist-signer-prod.pem"),
		filepath.Join("testdata", "cafiles", "acceptance-sts-signer-2018.pem"),
	}
	pool, err := connector.CertPoolFromPEMFiles(files...)
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		block, _ := pem.Decode(data)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(cert.Subject.CommonName, "CBE=0809394427"), cert.Subject.CommonName)
		require.True(t, time.Now().After(cert.NotAfter), "the test data should be expired")
		// Pinned as a root, the signer verifies itself while valid, not after.
		require.NoError(t, verifies(pool, cert, cert.NotBefore.Add(24*time.Hour)), f)
		var invalid x509.CertificateInvalidError
		require.ErrorAs(t, verifies(pool, cert, time.Now()), &invalid, f)
		require.Equal(t, x509.Expired, invalid.Reason)
	}
}

// A real chain: the acceptance service list's issuing CA, loaded from its PEM file, verifies
// the list's real signer (both cut from the KeyInfo of the acceptance list of 2022), and the
// production CA file does not.
func TestCertPoolFromPEMFiles_RealAcceptanceChain(t *testing.T) {
	pool, err := connector.CertPoolFromPEMFiles(filepath.Join("testdata", "cafiles", "acceptance-servicelist-issuing-ca.pem"))
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join("testdata", "cafiles", "acceptance-servicelist-signer-2022.pem"))
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	signer, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	when := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, verifies(pool, signer, when))

	other, err := connector.CertPoolFromPEMFiles(filepath.Join("testdata", "cafiles", "ehealth-servicelist-signer-prod.pem"))
	require.NoError(t, err)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, verifies(other, signer, when), &unknown)
}

func TestCertPoolFromPEMFiles_ExpiredCAIsLoadedButDoesNotVerifyToday(t *testing.T) {
	now := time.Now()
	old := newTestCA(t, "old CA", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	current := newTestCA(t, "current CA", now.Add(-time.Hour), now.Add(time.Hour))
	file := writeFile(t, t.TempDir(), "roots.pem", append(pemOf(old.cert), pemOf(current.cert)...))
	pool, err := connector.CertPoolFromPEMFiles(file)
	require.NoError(t, err)
	require.NoError(t, verifies(pool, current.leaf, now))
	require.Error(t, verifies(pool, old.leaf, now))
	require.NoError(t, verifies(pool, old.leaf, now.Add(-36*time.Hour)))
}

func TestCertPoolFromPEMFiles_TypedErrors(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "CA", now.Add(-time.Hour), now.Add(time.Hour))
	dir := t.TempDir()
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	garbled := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER at all")})
	good := writeFile(t, dir, "good.pem", pemOf(ca.cert))
	big := make([]byte, connector.MaxCertFileSize+1)
	copy(big, pemOf(ca.cert))

	tests := []struct {
		name   string
		files  []string
		file   string // the file the error must name ("" = none)
		block  int
		reason string
		cause  error // errors.Is target of the underlying error, or nil
	}{
		{"no file", nil, "", 0, "no file given", nil},
		{"missing", []string{good, filepath.Join(dir, "absent.pem")}, filepath.Join(dir, "absent.pem"), 0, "cannot open", fs.ErrNotExist},
		{"empty", []string{writeFile(t, dir, "empty.pem", nil)}, filepath.Join(dir, "empty.pem"), 0, "no PEM block", nil},
		{"text only", []string{writeFile(t, dir, "text.pem", []byte("please download the CA from the portal\n"))}, filepath.Join(dir, "text.pem"), 0, "no PEM block", nil},
		{"DER", []string{writeFile(t, dir, "ca.cer", ca.cert.Raw)}, filepath.Join(dir, "ca.cer"), 0, "a DER certificate", nil},
		{"broken block", []string{writeFile(t, dir, "cut.pem", pemOf(ca.cert)[:200])}, filepath.Join(dir, "cut.pem"), 0, "a BEGIN line without a well-formed block", nil},
		{"private key after a certificate", []string{writeFile(t, dir, "withkey.pem", append(pemOf(ca.cert), keyPEM...))}, filepath.Join(dir, "withkey.pem"), 2, `a "PRIVATE KEY" block, not a certificate`, nil},
		{"garbled certificate", []string{good, writeFile(t, dir, "garbled.pem", garbled)}, filepath.Join(dir, "garbled.pem"), 1, "not a valid certificate", nil},
		{"too large", []string{writeFile(t, dir, "big.pem", big)}, filepath.Join(dir, "big.pem"), 0, "larger than", nil},
		{"a directory", []string{dir}, dir, 0, "cannot read", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := connector.CertPoolFromPEMFiles(tt.files...)
			require.Nil(t, pool)
			require.ErrorIs(t, err, connector.ErrCertFile)
			var fe *connector.CertFileError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.file, fe.File)
			require.Equal(t, tt.block, fe.Block)
			require.Contains(t, fe.Reason, tt.reason)
			if tt.file != "" {
				require.Contains(t, err.Error(), tt.file)
			}
			if tt.block > 0 {
				require.Contains(t, err.Error(), fmt.Sprintf("PEM block %d", tt.block))
			}
			if tt.cause != nil {
				require.ErrorIs(t, err, tt.cause)
			}
		})
	}
}
