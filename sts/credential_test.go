package sts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o600))
	return p
}

func TestLoadPKCS12_ModernAndLegacyWithChain(t *testing.T) {
	p := getPKI(t)
	cert := p.leaf(t, 0, "NIHII-PHARMACY=12345678", pkiEpoch, 365*24*time.Hour)
	for name, enc := range map[string]*pkcs12.Encoder{"modern": pkcs12.Modern, "legacy": pkcs12.Legacy} {
		t.Run(name, func(t *testing.T) {
			// Chain deliberately out of order: the loader orders it from the leaf upwards.
			data, err := enc.Encode(p.keys[0], cert, []*x509.Certificate{p.root, p.inter}, "s3cret-pass")
			require.NoError(t, err)
			path := writeFile(t, t.TempDir(), "identity.p12", data)

			c, err := LoadPKCS12(path, "s3cret-pass", LoadOptions{Now: fixedNow})
			require.NoError(t, err)
			require.True(t, c.Certificate.Equal(cert))
			require.Len(t, c.Chain, 2)
			require.True(t, c.Chain[0].Equal(p.inter))
			require.True(t, c.Chain[1].Equal(p.root))
			require.Equal(t, path, c.Source)
			require.True(t, keyMatches(c.Key, cert))
		})
	}
}

func TestLoadPKCS12_LeafIsTheCertificateMatchingTheKey(t *testing.T) {
	p := getPKI(t)
	cert := p.leaf(t, 0, "leaf", pkiEpoch, 365*24*time.Hour)
	// The keystore names the intermediate as "the" certificate and the leaf as a CA cert.
	data, err := pkcs12.Modern.Encode(p.keys[0], p.inter, []*x509.Certificate{cert, p.root}, "pw")
	require.NoError(t, err)
	c, err := ParsePKCS12(data, "pw", "odd.p12", LoadOptions{Now: fixedNow})
	require.NoError(t, err)
	require.True(t, c.Certificate.Equal(cert))
	require.Len(t, c.Chain, 2)
	require.True(t, c.Chain[0].Equal(p.inter))
}

func TestLoadPKCS12_Errors(t *testing.T) {
	p := getPKI(t)
	dir := t.TempDir()
	valid := p.leaf(t, 0, "valid", pkiEpoch, 365*24*time.Hour)
	expired := p.leaf(t, 0, "expired", pkiEpoch, time.Hour)
	future := p.leaf(t, 0, "future", pkiEpoch.AddDate(1, 0, 0), time.Hour)
	enc := func(key any, cert *x509.Certificate, chain ...*x509.Certificate) []byte {
		data, err := pkcs12.Modern.Encode(key, cert, chain, "right-password")
		require.NoError(t, err)
		return data
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		name     string
		data     []byte
		password string
		opts     LoadOptions
		want     error
	}{
		{"wrong password", enc(p.keys[0], valid, p.inter, p.root), "wrong-password", LoadOptions{Now: fixedNow}, ErrBadPassword},
		{"not a keystore", []byte("definitely not DER"), "right-password", LoadOptions{Now: fixedNow}, ErrBadKeystore},
		{"key of another certificate", enc(p.keys[1], valid), "right-password", LoadOptions{Now: fixedNow}, ErrKeyMismatch},
		{"expired", enc(p.keys[0], expired, p.inter, p.root), "right-password", LoadOptions{Now: fixedNow}, ErrCertExpired},
		{"not yet valid", enc(p.keys[0], future, p.inter, p.root), "right-password", LoadOptions{Now: fixedNow}, ErrCertNotYetValid},
		{"chain without its intermediate", enc(p.keys[0], valid, p.root), "right-password", LoadOptions{Now: fixedNow}, ErrChainIncomplete},
		{"roots that do not issue it", enc(p.keys[0], valid), "right-password", LoadOptions{Now: fixedNow, Roots: x509.NewCertPool()}, ErrChainIncomplete},
		{"ecdsa key", enc(ecKey, valid), "right-password", LoadOptions{Now: fixedNow}, ErrUnsupportedKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "ks.p12", tt.data)
			_, err := LoadPKCS12(path, tt.password, tt.opts)
			require.ErrorIs(t, err, tt.want)
			var ce *CredentialError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, path, ce.File)
			require.Contains(t, err.Error(), path)
			require.NotContains(t, err.Error(), "right-password")
			require.NotContains(t, err.Error(), tt.password)
		})
	}

	_, err = LoadPKCS12(filepath.Join(dir, "missing.p12"), "x", LoadOptions{})
	require.ErrorIs(t, err, ErrBadKeystore)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "missing.p12")
}

func TestLoadPKCS12_ChainToConfiguredRoots(t *testing.T) {
	p := getPKI(t)
	cert := p.leaf(t, 0, "leaf", pkiEpoch, 365*24*time.Hour)
	data, err := pkcs12.Modern.Encode(p.keys[0], cert, []*x509.Certificate{p.inter}, "pw")
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(p.root)
	c, err := ParsePKCS12(data, "pw", "mem", LoadOptions{Now: fixedNow, Roots: roots})
	require.NoError(t, err)
	require.True(t, c.Certificate.Equal(cert))
}

func TestLoadPEM(t *testing.T) {
	p := getPKI(t)
	dir := t.TempDir()
	cert := p.leaf(t, 2, "SSIN=79021802145", pkiEpoch, 365*24*time.Hour)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(p.keys[2])
	require.NoError(t, err)
	pkcs1 := x509.MarshalPKCS1PrivateKey(p.keys[2])

	certOnly := writePEM(t, dir, "cert.pem", certBlock(cert))
	certAndChain := writePEM(t, dir, "fullchain.pem", certBlock(cert), certBlock(p.inter), certBlock(p.root))
	chain := writePEM(t, dir, "chain.pem", certBlock(p.inter), certBlock(p.root))
	key1 := writePEM(t, dir, "key1.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1})
	key8 := writePEM(t, dir, "key8.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})

	t.Run("pkcs1 key, chain file", func(t *testing.T) {
		c, err := LoadPEM(certOnly, key1, chain, LoadOptions{Now: fixedNow})
		require.NoError(t, err)
		require.True(t, c.Certificate.Equal(cert))
		require.Len(t, c.Chain, 2)
	})
	t.Run("pkcs8 key, chain in the certificate file", func(t *testing.T) {
		c, err := LoadPEM(certAndChain, key8, "", LoadOptions{Now: fixedNow})
		require.NoError(t, err)
		require.Len(t, c.Chain, 2)
		require.True(t, c.Chain[0].Equal(p.inter))
	})
	t.Run("no chain at all", func(t *testing.T) {
		c, err := LoadPEM(certOnly, key8, "", LoadOptions{Now: fixedNow})
		require.NoError(t, err)
		require.Empty(t, c.Chain)
	})

	otherKey := writePEM(t, dir, "other.pem", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(p.keys[3])})
	garbageKey := writeFile(t, dir, "garbage.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	encKey := writeFile(t, dir, "enc.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: pkcs1}))
	noCert := writeFile(t, dir, "nocert.pem", []byte("hello"))
	rootOnlyChain := writePEM(t, dir, "rootonly.pem", certBlock(p.root))

	tests := []struct {
		name                 string
		cert, key, chainFile string
		now                  func() time.Time
		want                 error
		file                 string
	}{
		{"key of another certificate", certOnly, otherKey, "", fixedNow, ErrKeyMismatch, otherKey},
		{"unparsable key", certOnly, garbageKey, "", fixedNow, ErrNoKey, garbageKey},
		{"encrypted key", certOnly, encKey, "", fixedNow, ErrUnsupportedKey, encKey},
		{"no certificate", noCert, key8, "", fixedNow, ErrNoCertificate, noCert},
		{"missing key file", certOnly, filepath.Join(dir, "nope.pem"), "", fixedNow, ErrNoKey, filepath.Join(dir, "nope.pem")},
		{"chain missing the intermediate", certOnly, key8, rootOnlyChain, fixedNow, ErrChainIncomplete, certOnly},
		{"expired", certOnly, key8, "", func() time.Time { return pkiEpoch.AddDate(2, 0, 0) }, ErrCertExpired, certOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPEM(tt.cert, tt.key, tt.chainFile, LoadOptions{Now: tt.now})
			require.ErrorIs(t, err, tt.want)
			var ce *CredentialError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.file, ce.File)
		})
	}
}
