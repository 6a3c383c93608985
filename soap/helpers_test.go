package soap_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

const (
	nsInsProtocol = "urn:be:fgov:ehealth:insurability:protocol:v2"
	nsInsCore     = "urn:be:fgov:ehealth:insurability:core:v2"
)

// insurabilityRequest builds a GetInsurabilityForPharmacistRequest of about
// 2 KB once signed, with made-up (not real) identifiers.
func insurabilityRequest() *etree.Element {
	req := etree.NewElement("ins:GetInsurabilityForPharmacistRequest")
	req.CreateAttr("xmlns:ins", nsInsProtocol)
	req.CreateAttr("xmlns:core", nsInsCore)
	ci := req.CreateElement("core:CommonInput")
	ci.CreateElement("core:Request").CreateElement("core:IsTest").SetText("true")
	origin := ci.CreateElement("core:Origin")
	lic := origin.CreateElement("core:Package").CreateElement("core:License")
	lic.CreateElement("core:Username").SetText("ehgate-test-package")
	lic.CreateElement("core:Password").SetText("not-a-real-password")
	origin.CreateElement("core:CareProvider").CreateElement("core:Nihii").SetText("29912345001")
	rci := req.CreateElement("core:RecordCommonInput")
	rci.CreateElement("core:Reference").SetText("ehgate-7f3c2a1e-5b4d-4c8e-9a6f-0d1e2f3a4b5c")
	rci.CreateElement("core:UserReference").SetText("counter-2 / operator 17")
	ir := req.CreateElement("core:InsurabilityRequest")
	ir.CreateElement("core:Date").SetText("2026-03-02")
	ir.CreateElement("core:RequestType").SetText("information")
	cr := ir.CreateElement("core:CareReceiver")
	cr.CreateElement("core:Ssin").SetText("00000000097")
	cr.CreateElement("core:RegNrWithMut").SetText("")
	cr.CreateElement("core:Mutuality").SetText("")
	period := ir.CreateElement("core:Period")
	period.CreateElement("core:BeginDate").SetText("2026-03-02")
	period.CreateElement("core:EndDate").SetText("2026-03-02")
	ctx := ir.CreateElement("core:Context")
	ctx.CreateElement("core:Software").SetText("ehgate-benchmark/1.0 (pharmacy counter software; build 2026.03)")
	ctx.CreateElement("core:Workstation").SetText("counter-2.pharmacy.local")
	ctx.CreateElement("core:Prescription").SetText("BEP0AB12CD34EF5")
	for _, code := range []string{"0000000001", "0000000002", "0000000003", "0000000004"} {
		it := ctx.CreateElement("core:Item")
		it.CreateAttr("type", "cnk")
		it.CreateElement("core:Code").SetText(code)
		it.CreateElement("core:Quantity").SetText("1")
	}
	note := ir.CreateElement("core:Comment")
	note.CreateAttr("lang", "fr")
	note.SetText("Demande d'assurabilité — contrôle au comptoir, \"tiers payant\" <standard> & co.")
	return req
}

// signedRequest returns a request signed by p's key with a BinarySecurityToken at testNow.
func signedRequest(tb testing.TB, p *pki) []byte {
	tb.Helper()
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	require.NoError(tb, err)
	msg, err := s.Sign(soap.NewEnvelope(insurabilityRequest()))
	require.NoError(tb, err)
	return msg
}

func newVerifier(tb testing.TB, p *pki, now time.Time) *soap.Verifier {
	tb.Helper()
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Now: func() time.Time { return now }})
	require.NoError(tb, err)
	return v
}

// parseMsg parses a serialised envelope for tampering.
func parseMsg(tb testing.TB, msg []byte) *etree.Document {
	tb.Helper()
	doc := etree.NewDocument()
	require.NoError(tb, doc.ReadFromBytes(msg))
	return doc
}

func marshal(tb testing.TB, doc *etree.Document) []byte {
	tb.Helper()
	b, err := soap.Marshal(doc)
	require.NoError(tb, err)
	return b
}

// find returns the only element matching path (etree path syntax) or fails.
func find(tb testing.TB, doc *etree.Document, path string) *etree.Element {
	tb.Helper()
	els := doc.FindElements(path)
	require.Len(tb, els, 1, fmt.Sprintf("path %s", path))
	return els[0]
}
