package connector_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/soap"
)

// signerCA issues certificates for the pin tests.
type signerCA struct {
	cert  *x509.Certificate
	key   *rsa.PrivateKey
	roots *x509.CertPool
}

func newSignerCA(t *testing.T) *signerCA {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "list CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &signerCA{cert: cert, key: key, roots: roots}
}

func (ca *signerCA) issue(t *testing.T, serial int64, subject pkix.Name, ext ...x509.ExtKeyUsage) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: ext, DNSNames: []string{"servicelist.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func signedList(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey) []byte {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(`<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" Id="_l1" IssueInstant="2026-03-02T09:00:00Z" Environment="Production"><Service Id="uddi:ehealth-fgov-be:business:insurability:v2" Name="INSURABILITY V2"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://services.example/Insurability/v2</Endpoint></EndpointList></Service></ServiceList>`))
	require.NoError(t, soap.SignEnveloped(doc.Root(), key, soap.EnvelopedOptions{IDAttr: "Id", Certificates: []*x509.Certificate{cert}, XAdES: true}))
	b, err := soap.Marshal(doc)
	require.NoError(t, err)
	return b
}

func fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// The review's attack (MEDIUM 2): any certificate chaining to ServiceListRoots, a TLS server
// certificate of the same CA included, could sign a list. The signer is now pinned.
func TestServiceListVerifier_PinsTheSigner(t *testing.T) {
	ca := newSignerCA(t)
	platformSubject := pkix.Name{CommonName: "CBE=0809394427, SERVICELIST", Organization: []string{"Federal Government"}, Country: []string{"BE"},
		OrganizationalUnit: []string{"SERVICELIST", "CBE=0809394427", "EHEALTH-PLATFORM", "eHealth-platform Belgium"}}
	listCert, listKey := ca.issue(t, 2, platformSubject)
	require.Equal(t, connector.DefaultServiceListSubject, listCert.Subject.String())
	tlsCert, tlsKey := ca.issue(t, 3, pkix.Name{CommonName: "servicelist.example", Organization: []string{"Federal Government"}}, x509.ExtKeyUsageServerAuth)
	twinCert, twinKey := ca.issue(t, 4, platformSubject) // same subject, another certificate

	byList, byTLS, byTwin := signedList(t, listCert, listKey), signedList(t, tlsCert, tlsKey), signedList(t, twinCert, twinKey)

	def := connector.ServiceListVerifier(ca.roots, connector.ServiceListSigner{})
	require.NoError(t, def(byList))
	require.NoError(t, def(byTwin), "the default pins the subject only")
	err := def(byTLS)
	require.ErrorIs(t, err, soap.ErrUntrusted)
	require.ErrorIs(t, err, connector.ErrServiceListSigner)

	pinned := connector.ServiceListVerifier(ca.roots, connector.ServiceListSigner{Fingerprints: []string{"  " + fingerprint(listCert)}})
	require.NoError(t, pinned(byList))
	require.ErrorIs(t, pinned(byTwin), connector.ErrServiceListSigner)
	require.ErrorIs(t, pinned(byTLS), connector.ErrServiceListSigner)

	// Fingerprint in the colon-separated upper-case form of openssl, with a subject too.
	colon := ""
	for i, c := range []byte(fingerprint(twinCert)) {
		if i > 0 && i%2 == 0 {
			colon += ":"
		}
		colon += string(c - 32*byte(btoi(c >= 'a')))
	}
	both := connector.ServiceListVerifier(ca.roots, connector.ServiceListSigner{Subject: connector.DefaultServiceListSubject, Fingerprints: []string{colon}})
	require.NoError(t, both(byTwin))
	require.ErrorIs(t, both(byList), connector.ErrServiceListSigner)

	// A subject pin alone accepts any certificate of that subject.
	other := connector.ServiceListVerifier(ca.roots, connector.ServiceListSigner{Subject: tlsCert.Subject.String()})
	require.NoError(t, other(byTLS))
	require.ErrorIs(t, other(byList), connector.ErrServiceListSigner)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
