package sts

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

// regenTestKeys rewrites testdata/test-keys.pem: `go test -run TestLoadPEM -regen-test-keys`.
var regenTestKeys = flag.Bool("regen-test-keys", false, "generate the RSA test keys again into testdata")

const testKeysFile = "testdata/test-keys.pem"

// testKeys returns n RSA-2048 keys, read from testdata so that test binaries and fuzz workers
// do not spend seconds generating them (they are test keys, of no value elsewhere).
func testKeys(n int) []*rsa.PrivateKey {
	var keys []*rsa.PrivateKey
	if !*regenTestKeys {
		data, err := os.ReadFile(testKeysFile)
		for err == nil {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			k, perr := x509.ParsePKCS1PrivateKey(block.Bytes)
			if perr != nil {
				panic(perr)
			}
			keys = append(keys, k)
		}
		if len(keys) >= n {
			return keys[:n]
		}
	}
	keys = keys[:0]
	var out []byte
	for range n {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys = append(keys, k)
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})...)
	}
	if *regenTestKeys {
		if err := os.WriteFile(testKeysFile, out, 0o644); err != nil {
			panic(err)
		}
	}
	return keys
}

// testPKI is a root CA, an intermediate CA and end-entity keys, generated once per test binary.
type testPKI struct {
	rootKey, interKey *rsa.PrivateKey
	root, inter       *x509.Certificate
	keys              []*rsa.PrivateKey // end-entity keys
	serial            int64
	mu                sync.Mutex
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

// pkiEpoch is the start of every test certificate's validity.
var pkiEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		p := &testPKI{}
		keys := testKeys(6)
		p.rootKey, p.interKey, p.keys = keys[0], keys[1], keys[2:]
		p.root = p.ca("Test Root CA", p.rootKey, nil, nil)
		p.inter = p.ca("Test Citizen CA", p.interKey, p.root, p.rootKey)
		pki = p
	})
	return pki
}

func (p *testPKI) nextSerial() *big.Int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serial++
	return big.NewInt(p.serial)
}

func (p *testPKI) ca(cn string, key *rsa.PrivateKey, parent *x509.Certificate, parentKey *rsa.PrivateKey) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber:          p.nextSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"ehgate test"}, Country: []string{"BE"}},
		NotBefore:             pkiEpoch,
		NotAfter:              pkiEpoch.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// leaf issues an end-entity certificate for end-entity key i, valid from notBefore for validity.
func (p *testPKI) leaf(t testing.TB, i int, cn string, notBefore time.Time, validity time.Duration) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: p.nextSerial(),
		Subject:      pkix.Name{CommonName: cn, SerialNumber: "79021802145", Organization: []string{"Pharmacie Test"}, Country: []string{"BE"}},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.inter, &p.keys[i].PublicKey, p.interKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

// credential returns a checked Credential for end-entity key i with the full chain.
func (p *testPKI) credential(t testing.TB, i int, cn string) *Credential {
	t.Helper()
	cert := p.leaf(t, i, cn, pkiEpoch, 2*365*24*time.Hour)
	c, err := NewCredential(cert, p.keys[i], []*x509.Certificate{p.inter, p.root}, cn, LoadOptions{Now: fixedNow})
	require.NoError(t, err)
	return c
}

// fixedNow is a moment inside every test certificate's validity.
func fixedNow() time.Time { return pkiEpoch.Add(30 * 24 * time.Hour) }

func writePEM(t testing.TB, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var out []byte
	for _, b := range blocks {
		out = append(out, pem.EncodeToMemory(b)...)
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

func certBlock(c *x509.Certificate) *pem.Block { return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw} }
