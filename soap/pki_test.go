package soap_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
		trusted = loadPKI("trusted")
		untrusted = loadPKI("untrusted")
	})
	return trusted, untrusted
}

// The test PKIs (2048-bit RSA, valid around testNow) are generated once,
// with go test -run TestRegeneratePKI ./soap -args -regen-pki, and kept in
// testdata, so that test binaries and fuzz workers spend no time on RSA key
// generation.
var regenPKI = flag.Bool("regen-pki", false, "rewrite testdata/pki with fresh keys")

func TestRegeneratePKI(t *testing.T) {
	if !*regenPKI {
		t.Skip("run with -regen-pki to rewrite testdata/pki")
	}
	for name, names := range map[string][2]string{
		"trusted":   {"ehgate test CA", "ehgate test pharmacy"},
		"untrusted": {"rogue CA", "rogue pharmacy"},
	} {
		p := newPKI(names[0], names[1])
		for file, data := range map[string][]byte{
			"ca.pem":   append(append([]byte{}, p.caPEM...), pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(p.caKey))...),
			"leaf.pem": append(append([]byte{}, p.certPEM...), p.keyPEM...),
		} {
			require.NoError(t, os.MkdirAll(filepath.Join("testdata", "pki", name), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join("testdata", "pki", name, file), data, 0o644))
		}
	}
}

// loadPKI reads testdata/pki/<name>/{ca,leaf}.pem: a certificate then its key.
func loadPKI(name string) *pki {
	read := func(file string) (*x509.Certificate, *rsa.PrivateKey, []byte, []byte) {
		data, err := os.ReadFile(filepath.Join("testdata", "pki", name, file))
		if err != nil {
			panic(err)
		}
		certBlock, rest := pem.Decode(data)
		keyBlock, _ := pem.Decode(rest)
		if certBlock == nil || keyBlock == nil {
			panic("testdata/pki/" + name + "/" + file + ": want a certificate and a key")
		}
		cert, err := x509.ParseCertificate(certBlock.Bytes)
		if err != nil {
			panic(err)
		}
		key, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
		if err != nil {
			panic(err)
		}
		return cert, key, pem.EncodeToMemory(certBlock), pem.EncodeToMemory(keyBlock)
	}
	ca, caKey, caPEM, _ := read("ca.pem")
	cert, key, certPEM, keyPEM := read("leaf.pem")
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &pki{caKey: caKey, ca: ca, key: key, cert: cert, roots: roots, caPEM: caPEM, certPEM: certPEM, keyPEM: keyPEM}
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
