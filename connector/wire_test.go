package connector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
)

// body parses an XML fragment as the first child of a SOAP Body would be.
func body(t testing.TB, xml string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(xml))
	return doc.Root()
}

func TestInsurabilityRequest_Invalid(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		req   InsurabilityRequest
		field string
	}{
		{InsurabilityRequest{}, "SSIN"},
		{InsurabilityRequest{RegNrWithMut: "1"}, "RegNrWithMut/Mutuality"},
		{InsurabilityRequest{RegNrWithMut: "1", Mutuality: "30"}, "RegNrWithMut/Mutuality"},
		{InsurabilityRequest{SSIN: "93051822361", RequestType: "gossip"}, "RequestType"},
		{InsurabilityRequest{SSIN: "93051822361", RequestType: "-"}, "RequestType"},
		{InsurabilityRequest{SSIN: "93051822361", UserReference: strings.Repeat("u", 26)}, "UserReference"},
		{InsurabilityRequest{RegNrWithMut: strings.Repeat("1", 14), Mutuality: "300"}, "RegNrWithMut/Mutuality"},
	} {
		_, err := tc.req.normalize(now)
		var re *RequestError
		require.ErrorAs(t, err, &re)
		require.Equal(t, tc.field, re.Field)
		require.ErrorIs(t, err, ErrRequest)
	}
	_, err := InsurabilityRequest{SSIN: "93051822362"}.normalize(now)
	require.ErrorIs(t, err, ErrInvalidSSIN)
}

var (
	etkKeyOnce sync.Once
	etkKey     *ecdsa.PrivateKey
)

// testETK builds an ETK per docs/wire/etk.md: ContentInfo{signedData, SignedData{..., eContent = DER of
// the encryption certificate}} with subject CN=<type>=<value>[, OU=<app>].
func testETK(t testing.TB, id Identifier, notAfter time.Time) []byte {
	t.Helper()
	etkKeyOnce.Do(func() {
		var err error
		etkKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
	})
	subj := pkix.Name{CommonName: id.Type + "=" + id.Value}
	if id.ApplicationID != "" {
		subj.OrganizationalUnit = []string{id.ApplicationID}
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: subj, NotBefore: notAfter.AddDate(-2, 0, 0), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &etkKey.PublicKey, etkKey)
	require.NoError(t, err)
	return wrapETK(t, der)
}

func wrapETK(t testing.TB, content []byte) []byte {
	t.Helper()
	type algo struct{ Algorithm asn1.ObjectIdentifier }
	sd := struct {
		Version          int
		DigestAlgorithms []algo `asn1:"set"`
		Encap            struct {
			Type    asn1.ObjectIdentifier
			Content []byte `asn1:"explicit,tag:0"`
		}
		SignerInfos []asn1.RawValue `asn1:"set"`
	}{Version: 1, DigestAlgorithms: []algo{{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}}}
	sd.Encap.Type = oidData
	sd.Encap.Content = content
	sdDER, err := asn1.Marshal(sd)
	require.NoError(t, err)
	ci, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{oidSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
	require.NoError(t, err)
	return ci
}

func TestParseETK(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	id := Identifier{Type: "NIHII-PHARMACY", Value: "12345678", ApplicationID: ""}
	der := testETK(t, id, now.AddDate(1, 0, 0))
	e, err := checkETK(der, id, now)
	require.NoError(t, err)
	require.Equal(t, "NIHII-PHARMACY=12345678", e.Certificate.Subject.CommonName)

	_, err = checkETK(der, Identifier{Type: "NIHII-PHARMACY", Value: "87654321"}, now)
	require.ErrorIs(t, err, ErrETK)
	_, err = checkETK(der, Identifier{Type: "NIHII-PHARMACY", Value: "12345678", ApplicationID: "APP"}, now)
	require.ErrorIs(t, err, ErrETK, "the application must match")
	_, err = checkETK(der, id, now.AddDate(2, 0, 0))
	require.ErrorIs(t, err, ErrETK, "never an expired certificate")

	app := Identifier{Type: "CBE", Value: "0809394427", ApplicationID: "MYCARENET"}
	_, err = checkETK(testETK(t, app, now.AddDate(1, 0, 0)), app, now)
	require.NoError(t, err)

	for name, bad := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("not asn1"),
		"trailing":     append(append([]byte{}, der...), 0),
		"not a cert":   wrapETK(t, []byte("hello")),
		"truncated":    der[:len(der)/2],
		"huge":         make([]byte, maxETKBytes+1),
		"wrong oid ci": func() []byte { b := append([]byte{}, der...); b[len(b)-len(der)+8]++; return b }(),
	} {
		_, err := ParseETK(bad)
		require.ErrorIs(t, err, ErrETK, name)
	}
}

func TestBusinessError_TextCarriesNoPatient(t *testing.T) {
	err := &BusinessError{Service: ServiceInsurability, Code: "1", Minor: "12", Message: "patient PEETERS Jan (85.07.30-033.28) unknown"}
	require.Equal(t, "connector: insurability:v2: business error 1/12", err.Error())
	require.Contains(t, err.Message, "PEETERS", "the field keeps the platform's text for the pharmacist")
	for in, want := range map[string]string{
		"ssin 93051822361 unknown":    "ssin [number] unknown",
		"ssin 85.07.30-033.28 x":      "ssin [number] x",
		"ssin 850730 033 28.":         "ssin [number].",
		"regnr 123/456/789 mut 300":   "regnr [number] mut 300",
		"code 400 at 12:30, 2026-11":  "code 400 at 12:30, 2026-11",
		"12345678 is short, 1.2.3.4.": "12345678 is short, 1.2.3.4.",
	} {
		require.Equal(t, want, redactNumbers(in), in)
	}
	require.Equal(t, "ab…", truncateText("abé", 3), "never half a rune")
}
