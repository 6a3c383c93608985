package x500

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	block, _ := pem.Decode(data)
	require.NotNil(t, block)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

// TestRFC1779_RealCertificates: the vectors are what Java's X500Principal.getName("RFC1779")
// gives for real eHealth certificates.
func TestRFC1779_RealCertificates(t *testing.T) {
	tests := []struct {
		file, subject, issuer string
	}{
		{"testdata/ehealth-servicelist-signer-prod.pem",
			`CN="CBE=0809394427, SERVICELIST", OU=eHealth-platform Belgium, OU=EHEALTH-PLATFORM, OU="CBE=0809394427", OU=SERVICELIST, O=Federal Government, C=BE`,
			`CN=ZetesConfidens Private Trust PKI - eHealth issuing CA 001, OID.2.5.4.5=001, O=ZETES SA, C=BE`},
		{"testdata/acceptance-sts-signer-2018.pem",
			`CN="CBE=0809394427, IAMACC", OU=eHealth-platform Belgium, OU=EHEALTH-PLATFORM, OU="CBE=0809394427", OU=IAMACC, O=Federal Government, C=BE`,
			`CN=QuoVadis Trust Anchor Issuing CA G2, O=QuoVadis Limited, C=BM`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cert := readCert(t, tt.file)
			got, err := RFC1779(cert.RawSubject)
			require.NoError(t, err)
			require.Equal(t, tt.subject, got)
			require.NotEqual(t, cert.Subject.String(), got, "Go's RFC 2253 rendering differs")
			got, err = RFC1779(cert.RawIssuer)
			require.NoError(t, err)
			require.Equal(t, tt.issuer, got)
		})
	}
}

type rdn []atvIn

type atvIn struct {
	oid   asn1.ObjectIdentifier
	tag   int
	value string
}

// name encodes rdns (first = least specific, as in a certificate) with the given string tags.
func name(t *testing.T, rdns ...rdn) []byte {
	t.Helper()
	var seq []rdnSET
	for _, r := range rdns {
		var set rdnSET
		for _, a := range r {
			v := asn1.RawValue{Class: asn1.ClassUniversal, Tag: a.tag, Bytes: []byte(a.value)}
			if a.tag == asn1.TagBMPString {
				var b []byte
				for _, c := range a.value {
					b = append(b, byte(c>>8), byte(c))
				}
				v.Bytes = b
			}
			full, err := asn1.Marshal(v)
			require.NoError(t, err)
			v.FullBytes = full
			set = append(set, atv{Type: a.oid, Value: v})
		}
		seq = append(seq, set)
	}
	der, err := asn1.Marshal(seq)
	require.NoError(t, err)
	return der
}

var (
	oidC   = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO   = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU  = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN  = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN  = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidDC  = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidST  = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL   = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidSTR = asn1.ObjectIdentifier{2, 5, 4, 9}
	oidEM  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

func p(oid asn1.ObjectIdentifier, v string) atvIn { return atvIn{oid, asn1.TagPrintableString, v} }
func u(oid asn1.ObjectIdentifier, v string) atvIn { return atvIn{oid, asn1.TagUTF8String, v} }

func TestRFC1779_Rules(t *testing.T) {
	tests := []struct {
		name string
		der  func(t *testing.T) []byte
		want string
	}{
		{"order most specific first, repeated OU each its own", func(t *testing.T) []byte {
			return name(t, rdn{p(oidC, "BE")}, rdn{p(oidO, "Federal Government")}, rdn{p(oidOU, "A")}, rdn{p(oidOU, "B")}, rdn{u(oidCN, "x")})
		}, "CN=x, OU=B, OU=A, O=Federal Government, C=BE"},
		{"multi-valued rdn joined by plus, in DER (SET) order", func(t *testing.T) []byte {
			return name(t, rdn{p(oidC, "BE")}, rdn{p(oidOU, "A"), p(oidCN, "x")})
		}, "CN=x + OU=A, C=BE"},
		{"keywords L ST STREET, others as OID", func(t *testing.T) []byte {
			return name(t, rdn{p(oidST, "Brussels")}, rdn{p(oidL, "Brussel")}, rdn{u(oidSTR, "Rue 1")}, rdn{atvIn{oidDC, asn1.TagIA5String, "be"}}, rdn{atvIn{oidEM, asn1.TagIA5String, "a@b.be"}}, rdn{p(oidSN, "001")})
		}, "OID.2.5.4.5=001, OID.1.2.840.113549.1.9.1=a@b.be, OID.0.9.2342.19200300.100.1.25=be, STREET=Rue 1, L=Brussel, ST=Brussels"},
		{"special characters quote", func(t *testing.T) []byte {
			return name(t, rdn{u(oidCN, "a,b")}, rdn{u(oidCN, "a=b")}, rdn{u(oidCN, "a+b")}, rdn{u(oidCN, "<a>")}, rdn{u(oidCN, "#a")}, rdn{u(oidCN, "a;b")})
		}, `CN="a;b", CN="#a", CN="<a>", CN="a+b", CN="a=b", CN="a,b"`},
		{"quote and backslash escaped inside quotes", func(t *testing.T) []byte {
			return name(t, rdn{u(oidCN, `say "hi"`)}, rdn{u(oidCN, `a\b`)})
		}, `CN="a\\b", CN="say \"hi\""`},
		{"already quoted value kept", func(t *testing.T) []byte {
			return name(t, rdn{u(oidCN, `"a,b"`)})
		}, `CN="a,b"`},
		{"leading, trailing and double spaces quote", func(t *testing.T) []byte {
			return name(t, rdn{u(oidCN, " a")}, rdn{u(oidCN, "a ")}, rdn{u(oidCN, "a  b")}, rdn{u(oidCN, "a b")})
		}, `CN=a b, CN="a  b", CN="a ", CN=" a"`},
		{"non printable-string characters written as they are", func(t *testing.T) []byte {
			return name(t, rdn{u(oidL, "Liège")}, rdn{u(oidCN, "a_b@c")}, rdn{atvIn{oidO, asn1.TagBMPString, "Zürich"}})
		}, "O=Zürich, CN=a_b@c, L=Liège"},
		{"non-string value in hex of its DER", func(t *testing.T) []byte {
			return name(t, rdn{atvIn{oidSN, asn1.TagOctetString, "\x01\xab"}})
		}, "OID.2.5.4.5=#040201AB"},
		{"empty name", func(t *testing.T) []byte { return name(t) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RFC1779(tt.der(t))
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRFC1779_Malformed(t *testing.T) {
	for _, raw := range [][]byte{nil, {0x30}, {0x30, 0x03, 0x31, 0x01}, {0x04, 0x00}, append(name(t, rdn{p(oidC, "BE")}), 0)} {
		_, err := RFC1779(raw)
		require.ErrorIs(t, err, ErrMalformed, "%x", raw)
	}
}

func FuzzRFC1779(f *testing.F) {
	for _, file := range []string{"testdata/ehealth-servicelist-signer-prod.pem", "testdata/acceptance-sts-signer-2018.pem"} {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		block, _ := pem.Decode(data)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cert.RawSubject)
		f.Add(cert.RawIssuer)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := RFC1779(raw)
		if err != nil && s != "" {
			t.Fatalf("error %v with output %q", err, s)
		}
	})
}
