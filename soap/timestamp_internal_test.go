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
