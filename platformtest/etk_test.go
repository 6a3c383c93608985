package platformtest_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/http"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

func etkRequest(typ, value, app string) *etree.Element {
	r := etree.NewElement("etk:GetEtkRequest")
	r.CreateAttr("xmlns:etk", platformtest.NSETK)
	id := r.CreateElement("etk:SearchCriteria").CreateElement("etk:Identifier")
	id.CreateElement("etk:Type").SetText(typ)
	id.CreateElement("etk:Value").SetText(value)
	if app != "" {
		id.CreateElement("etk:ApplicationID").SetText(app)
	}
	return r
}

// cms mirrors RFC 5652 independently of the platform's encoder.
type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}
type cmsSignedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	Encap            struct {
		Type    asn1.ObjectIdentifier
		Content []byte `asn1:"explicit,tag:0"`
	}
	Certificates asn1.RawValue   `asn1:"tag:0"`
	SignerInfos  []cmsSignerInfo `asn1:"set"`
}
type cmsSignerInfo struct {
	Version int
	SID     struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}
type cmsAttribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// openETK checks an ETK's CMS structure and signature and returns the
// encryption certificate it carries and the signer.
func openETK(t *testing.T, der []byte) (enc, signer *x509.Certificate) {
	t.Helper()
	var ci cmsContentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	require.NoError(t, err)
	require.Empty(t, rest)
	require.Equal(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}, ci.ContentType)
	var sd cmsSignedData
	_, err = asn1.Unmarshal(ci.Content.Bytes, &sd) // the SignedData inside [0]
	require.NoError(t, err)
	require.Equal(t, 1, sd.Version)
	require.Equal(t, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, sd.DigestAlgorithms[0].Algorithm)
	require.Equal(t, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, sd.Encap.Type)
	enc, err = x509.ParseCertificate(sd.Encap.Content)
	require.NoError(t, err)
	signer, err = x509.ParseCertificate(sd.Certificates.Bytes)
	require.NoError(t, err)
	require.Len(t, sd.SignerInfos, 1)
	si := sd.SignerInfos[0]
	require.Equal(t, 0, signer.SerialNumber.Cmp(si.SID.Serial))

	// The signature covers the signed attributes re-tagged as a SET.
	setDER, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: si.SignedAttrs.Bytes})
	require.NoError(t, err)
	h := sha256.Sum256(setDER)
	require.NoError(t, rsa.VerifyPKCS1v15(signer.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], si.Signature))
	var attrs []cmsAttribute
	for rest := si.SignedAttrs.Bytes; len(rest) > 0; {
		var a cmsAttribute
		rest, err = asn1.Unmarshal(rest, &a)
		require.NoError(t, err)
		attrs = append(attrs, a)
	}
	digest := sha256.Sum256(sd.Encap.Content)
	found := false
	for _, a := range attrs {
		if a.Type.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}) {
			var md []byte
			_, err := asn1.Unmarshal(a.Values[0].FullBytes, &md)
			require.NoError(t, err)
			require.Equal(t, digest[:], md)
			found = true
		}
	}
	require.True(t, found, "messageDigest attribute")
	return enc, signer
}

func askETK(t *testing.T, p *platformtest.Platform, typ, value, app string) *etree.Element {
	t.Helper()
	msg, err := soap.Marshal(soap.NewEnvelope(etkRequest(typ, value, app)))
	require.NoError(t, err)
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceETK, "ehealth"), platformtest.ActionETK, msg)
	require.Equal(t, http.StatusOK, status, string(b))
	resp, f := answer(t, b)
	require.Nil(t, f)
	require.Equal(t, "200", resp.FindElement("./Status/Code").Text())
	return resp
}

func TestETK_ServesSignedETKsOfIdentitiesAndInstitutionsWithoutAuthentication(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Markt")
	require.NoError(t, err)

	tests := []struct {
		typ, value, app string
		cn, ou          string
		signer          *x509.Certificate // nil = self-signed structure
	}{
		{"SSIN", id.SSIN, "", "SSIN=" + id.SSIN, "", id.Certificate},
		{"NIHII-PHARMACY", id.NIHII, "", "NIHII-PHARMACY=" + id.NIHII, "", id.Certificate},
		{"CBE", "0809394427", "", "CBE=0809394427", "", nil},
		{"EHP", "1990001916", "RECIPE", "EHP=1990001916", "RECIPE", nil},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			resp := askETK(t, p, tt.typ, tt.value, tt.app)
			der, err := base64.StdEncoding.DecodeString(resp.SelectElement("ETK").Text())
			require.NoError(t, err)
			enc, signer := openETK(t, der)
			require.Equal(t, tt.cn, enc.Subject.CommonName)
			if tt.ou != "" {
				require.Equal(t, []string{tt.ou}, enc.Subject.OrganizationalUnit)
			}
			if tt.signer != nil {
				require.True(t, signer.Equal(tt.signer))
			} else {
				require.True(t, signer.Equal(enc))
			}
			want, _, err := p.ETK(tt.typ, tt.value, tt.app)
			require.NoError(t, err)
			require.True(t, want.Equal(enc))
		})
	}

	resp := askETK(t, p, "EHP", "1990001916", "")
	matches := resp.SelectElements("MatchingEtk")
	require.Len(t, matches, 2, "several ETKs without an application ID: the client asks again")
	require.Equal(t, "PRESCRIBER", matches[0].FindElement("./Identifier/ApplicationID").Text())

	resp = askETK(t, p, "CBE", "0123456789", "")
	require.Equal(t, "NOT_FOUND", resp.FindElement("./Error/Code").Text())
	require.Nil(t, resp.SelectElement("ETK"))
}
