package soap_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the tests; the test certificates are valid around it.
var testNow = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// pki is a CA and a leaf it issued, with their keys.
type pki struct {
	caKey   *rsa.PrivateKey
	ca      *x509.Certificate
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	roots   *x509.CertPool
	caPEM   []byte
	certPEM []byte
	keyPEM  []byte
}

var (
	pkiOnce            sync.Once
	trusted, untrusted *pki
)

// testPKIs returns two independent PKIs, generated once per test binary.
func testPKIs(tb testing.TB) (*pki, *pki) {
	tb.Helper()
	return examplePKIs()
}

func examplePKIs() (*pki, *pki) {
	pkiOnce.Do(func() {
		trusted = newPKI("ehgate test CA", "ehgate test pharmacy")
		untrusted = newPKI("rogue CA", "rogue pharmacy")
	})
	return trusted, untrusted
}

func newPKI(caName, leafName string) *pki {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: caName, Organization: []string{"ehgate tests"}},
		NotBefore:             testNow.Add(-24 * time.Hour),
		NotAfter:              testNow.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		panic(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: leafName, Organization: []string{"ehgate tests"}},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(180 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &pki{caKey: caKey, ca: ca, key: key, cert: leaf, roots: roots,
		caPEM: pemOf("CERTIFICATE", caDER), certPEM: pemOf("CERTIFICATE", leafDER),
		keyPEM: pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))}
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
