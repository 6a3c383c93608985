package soap

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
)

// A validly signed message whose Timestamp has no Expires is refused: it
// would otherwise stay fresh forever.
func TestVerify_RequiresExpires(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	s, err := NewSigner(SignerConfig{Key: key, Certificate: cert, Now: func() time.Time { return now }})
	require.NoError(t, err)
	env := NewEnvelope(etree.NewElement("Ping"))
	_, err = s.Sign(env)
	require.NoError(t, err)

	// Drop Expires, then re-digest the Timestamp and re-sign, as a sender would.
	ts := env.FindElement("//wsu:Timestamp")
	ts.RemoveChild(ts.SelectElement("wsu:Expires"))
	d, err := digestOf(ts, "", nil)
	require.NoError(t, err)
	env.FindElement("//ds:Reference[2]/ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(d))
	sig := env.FindElement("//ds:Signature")
	sig.RemoveChild(sig.SelectElement("ds:SignatureValue"))
	require.NoError(t, signSignedInfo(sig, sig.SelectElement("ds:SignedInfo"), key))
	msg, err := Marshal(env)
	require.NoError(t, err)

	v, err := NewVerifier(VerifierConfig{Roots: roots, Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = v.Verify(msg)
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "without Expires")
}

// The review's attack (LOW 4): a validly signed Timestamp whose Expires is
// before its Created, or that lasts ten years, was accepted.
func TestVerify_TimestampLifetimeBounded(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	// signed returns a message signed (by the public Signer, then with its
	// Timestamp rewritten and re-signed as a sender would) with these instants.
	signed := func(created, expires time.Time) []byte {
		s, err := NewSigner(SignerConfig{Key: key, Certificate: cert, Now: func() time.Time { return now }})
		require.NoError(t, err)
		env := NewEnvelope(etree.NewElement("Ping"))
		_, err = s.Sign(env)
		require.NoError(t, err)
		ts := env.FindElement("//wsu:Timestamp")
		ts.SelectElement("wsu:Created").SetText(created.UTC().Format(timestampLayout))
		ts.SelectElement("wsu:Expires").SetText(expires.UTC().Format(timestampLayout))
		d, err := digestOf(ts, "", nil)
		require.NoError(t, err)
		env.FindElement("//ds:Reference[2]/ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(d))
		sig := env.FindElement("//ds:Signature")
		sig.RemoveChild(sig.SelectElement("ds:SignatureValue"))
		require.NoError(t, signSignedInfo(sig, sig.SelectElement("ds:SignedInfo"), key))
		msg, err := Marshal(env)
		require.NoError(t, err)
		return msg
	}
	verifier := func(maxLifetime time.Duration) *Verifier {
		v, err := NewVerifier(VerifierConfig{Roots: roots, Now: func() time.Time { return now }, MaxLifetime: maxLifetime})
		require.NoError(t, err)
		return v
	}

	tests := []struct {
		name             string
		created, expires time.Time
		maxLifetime      time.Duration
		want             error
	}{
		{"expires before created", now.Add(-time.Second), now.Add(-time.Minute), 0, ErrTimestampLifetime},
		{"expires equal to created", now, now, 0, ErrTimestampLifetime},
		{"lasts ten years", now.Add(-time.Second), now.AddDate(10, 0, 0), 0, ErrTimestampLifetime},
		{"just over the default", now.Add(-time.Second), now.Add(-time.Second + DefaultMaxTimestampLifetime + time.Millisecond), 0, ErrTimestampLifetime},
		{"at the default", now.Add(-time.Second), now.Add(-time.Second + DefaultMaxTimestampLifetime), 0, nil},
		{"an hour with an hour allowed", now.Add(-time.Second), now.Add(time.Hour - time.Second), time.Hour, nil},
		{"an hour with the default", now.Add(-time.Second), now.Add(time.Hour - time.Second), 0, ErrTimestampLifetime},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifier(tc.maxLifetime).Verify(signed(tc.created, tc.expires))
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}

	// A Signer asked for a ten-year TTL produces what the default verifier refuses.
	s, err := NewSigner(SignerConfig{Key: key, Certificate: cert, Now: func() time.Time { return now }, TTL: 10 * 365 * 24 * time.Hour})
	require.NoError(t, err)
	msg, err := s.Sign(NewEnvelope(etree.NewElement("Ping")))
	require.NoError(t, err)
	_, err = verifier(0).Verify(msg)
	require.ErrorIs(t, err, ErrTimestampLifetime)
	_, err = NewVerifier(VerifierConfig{Roots: roots, MaxLifetime: -time.Second})
	require.Error(t, err)
}
