package connector

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// The platform's schemas (platformtest/testdata/xsd, README there names their sources) are the
// judges of the wire format: xmllint validates what the builders produce and the corpus of
// answers the readers are tested on.

const xsdDir = "../platformtest/testdata/xsd"

// Schemas of the messages, below xsdDir.
const (
	xsdInsurability = "freehealth-connector/compiled/RECIPE.1.9.1/wsdl/ehealth-insurability/XSD/insurabilityservices_protocol-2_0.xsd"
	xsdGenIns11     = "freehealth-connector/src/main/resources/ehealth-mycarenet-genins/XSD/ehealth-genins-protocol-1_1.xsd"
	xsdGenIns10Core = "eHI/genIns-module/wsdl/eHealthESB/XSD/gen_ins_services_core-1_0.xsd"
	xsdGenIns11Core = "freehealth-connector/src/main/resources/ehealth-mycarenet-genins/XSD/ehealth-genins-core-1_1.xsd"
	xsdETK          = "freehealth-connector/src/main/resources/ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd"
	xsdEHealthBox   = "freehealth-connector/src/main/resources/ehealth-ehbox/XSD/ehealth-ehBox-publication-schema-protocol-3_0.xsd"
	xsdSAMLP        = "freehealth-connector/src/main/resources/external/XSD/oasis-sstc-saml-schema-protocol-1.1.xsd"
	xsdWSSHeaders   = "wrappers/wss-headers.xsd"
)

// xmllint returns the path of xmllint or skips the test.
func xmllint(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils): schema validation skipped")
	}
	return p
}

// validate runs xmllint --schema on payload and returns its verdict (nil when valid).
func validate(t testing.TB, schema string, payload []byte) error {
	t.Helper()
	bin := xmllint(t)
	f := filepath.Join(t.TempDir(), "payload.xml")
	require.NoError(t, os.WriteFile(f, payload, 0o600))
	out, err := exec.Command(bin, "--noout", "--nonet", "--schema", filepath.Join(xsdDir, schema), f).CombinedOutput()
	if err != nil {
		return &schemaError{out: string(out)}
	}
	return nil
}

type schemaError struct{ out string }

func (e *schemaError) Error() string { return e.out }

// requireValid fails unless payload validates against schema.
func requireValid(t testing.TB, schema string, payload []byte) {
	t.Helper()
	require.NoError(t, validate(t, schema, payload), "%s", payload)
}

// serialize writes el as a standalone document.
func serialize(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	require.NoError(t, err)
	return b
}

func testOrigin() requestOrigin {
	return requestOrigin{IsTest: true, Package: PackageLicense{Name: "ehgate test", Username: "lic-user", Password: "lic-pass"},
		NIHII: "12345678901", HolderNIHII: "10987654321", SSIN: "85073003328"}
}

func TestWireRequests_ValidateAgainstSchemas(t *testing.T) {
	xmllint(t)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	gen := func(r GenericInsurabilityRequest) GenericInsurabilityRequest {
		n, err := r.normalize(now)
		require.NoError(t, err)
		return n
	}
	box := func(m EHealthBoxMessage) EHealthBoxMessage {
		n, err := m.normalize()
		require.NoError(t, err)
		return n
	}
	bare := requestOrigin{Package: PackageLicense{Username: "u", Password: "p"}, NIHII: "12345678901"}
	gp := testOrigin()
	gp.Preset, gp.HolderNIHII = PresetGP, ""
	refs := newReferenceSource()
	// Payloads written in canonical form: schema-valid, and their own exclusive canonical form
	// for xmllint and for soap (what the signature digests is what is sent).
	canonical := func(t *testing.T, schema string, b []byte) {
		requireValid(t, schema, b)
		require.Equal(t, string(b), string(excC14N(t, b)), "the payload is its own exclusive canonical form")
		doc := etree.NewDocument()
		require.NoError(t, doc.ReadFromBytes(b))
		c14n, err := soap.Canonical(doc.Root())
		require.NoError(t, err)
		require.Equal(t, string(b), string(c14n), "as the signer and the verifier canonicalise it")
	}
	for _, tc := range insurabilityWireCases(t, now) {
		t.Run(tc.name, func(t *testing.T) {
			canonical(t, xsdInsurability, appendInsurabilityRequest(nil, tc.req, tc.origin, tc.ref))
		})
	}
	escaped := testOrigin()
	escaped.Package = PackageLicense{Name: "Tom & Jerry <pharma> 'x'\r\n\tÉ€𝄞", Username: "a&b", Password: "p<>\x01\xff"}
	for _, tc := range []struct {
		name   string
		req    GenericInsurabilityRequest
		origin requestOrigin
		ref    string
	}{
		{"genins ssin, pharmacy preset", gen(GenericInsurabilityRequest{SSIN: "93051822361"}), testOrigin(), refs.next()},
		{"genins regnr, gp, period", gen(GenericInsurabilityRequest{RegNrWithMut: "0123456789012", Mutuality: "500",
			RequestType: RequestInvoicing, PeriodEnd: now.AddDate(0, 1, 0), ContactType: ContactHospitalizedForDay}), gp, refs.next()},
		{"genins bare origin", gen(GenericInsurabilityRequest{SSIN: "93051822361", ContactType: ContactOther}), bare, "7"},
		{"genins text to escape", gen(GenericInsurabilityRequest{SSIN: "93051822361"}), escaped, refs.next()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			canonical(t, xsdGenIns11, appendGenericInsurabilityRequest(nil, tc.req, tc.origin, tc.ref))
		})
	}
	for _, tc := range []struct {
		name, schema string
		el           *etree.Element
	}{
		{"etk", xsdETK, buildETKRequest(Identifier{Type: "NIHII-PHARMACY", Value: "12345678901"})},
		{"etk with application", xsdETK, buildETKRequest(Identifier{Type: "CBE", Value: "0809394427", ApplicationID: "MYCARENET"})},
		{"ehealthbox minimal", xsdEHealthBox, buildSendMessageRequest(box(EHealthBoxMessage{Recipients: []EHealthBoxAddress{{ID: "12345678901", Type: "NIHII", Quality: "DOCTOR"}},
			Title: "Dispensation", Content: []byte("sealed bytes")}), bare)},
		{"ehealthbox full", xsdEHealthBox, buildSendMessageRequest(box(EHealthBoxMessage{PublicationID: "PUB0000000001", Sender: &EHealthBoxAddress{ID: "12345678901", Type: "NIHII", Quality: "PHARMACY"},
			Recipients: []EHealthBoxAddress{{ID: "12345678901", Type: "NIHII", SubType: "1", Quality: "DOCTOR"}, {ID: "85073003328", Type: "INSS", Quality: "NURSE"}},
			Title:      strings.Repeat("t", 400), Content: bytes.Repeat([]byte{0, 0xff}, 300), MimeType: "application/octet-stream", FileName: "msg.bin",
			FreeText: []byte("sealed text"), PatientINSS: []byte("sealed ssin"), Encrypted: true, Important: true,
			PublicationReceipt: true, ReceivedReceipt: true, ReadReceipt: true}), testOrigin())},
	} {
		t.Run(tc.name, func(t *testing.T) { requireValid(t, tc.schema, serialize(t, tc.el)) })
	}
}

// The eHealth ESB's GenericInsurability 1.0 schema does not compile in libxml2 (its core uses
// xml:lang without importing the xml namespace), so requests are validated against 1.1; this
// test proves that 1.0 and 1.1 differ in nothing else than values the builder never sends
// (mutualities 750 and 999, insurer code 000) and that import.
// insurabilityWireCase is one Insurability v2 request as the client writes it.
type insurabilityWireCase struct {
	name   string
	req    InsurabilityRequest // normalized
	origin requestOrigin
	ref    string
}

// insurabilityWireCases are requests covering every branch of appendInsurabilityRequest:
// SSIN or registration number, each request type, with and without the holder's NIHII, a
// bare origin, the largest reference, and text that canonical XML must escape.
func insurabilityWireCases(t testing.TB, now time.Time) []insurabilityWireCase {
	ins := func(r InsurabilityRequest) InsurabilityRequest {
		n, err := r.normalize(now)
		require.NoError(t, err)
		return n
	}
	noHolder := testOrigin()
	noHolder.HolderNIHII = ""
	bare := requestOrigin{Package: PackageLicense{Username: "u", Password: "p"}, NIHII: "12345678901"}
	escaped := testOrigin()
	escaped.Package = PackageLicense{Name: "Tom & Jerry <pharma> \"1\" 'x'\r\n\tÉ€𝄞", Username: "a&b", Password: "p<>\x01\xff"}
	refs := newReferenceSource()
	return []insurabilityWireCase{
		{"insurability ssin, holder and pharmacy", ins(InsurabilityRequest{SSIN: "93.05.18-223.61", UserReference: "COUNTER-7"}), testOrigin(), refs.next()},
		{"insurability regnr, invoicing", ins(InsurabilityRequest{RegNrWithMut: "0123456789012", Mutuality: "300", RequestType: RequestInvoicing}), testOrigin(), refs.next()},
		{"insurability without holder nihii", ins(InsurabilityRequest{SSIN: "93051822361", RequestType: "X"}), noHolder, refs.next()},
		{"insurability bare origin", ins(InsurabilityRequest{SSIN: "93051822361"}), bare, "1"},
		{"insurability largest reference", ins(InsurabilityRequest{SSIN: "93051822361"}), bare, "99999999999999"},
		{"insurability text to escape", ins(InsurabilityRequest{SSIN: "93051822361", UserReference: "<&>\r"}), escaped, refs.next()},
	}
}

// inEnvelope puts an answer document (its XML declaration and comments dropped) in the
// Body of a SOAP envelope with a Header, as an endpoint sends it.
func inEnvelope(t testing.TB, doc []byte) []byte {
	t.Helper()
	root := doc[bytes.Index(doc, []byte("\n<"))+1:]
	for bytes.HasPrefix(root, []byte("<!--")) || bytes.HasPrefix(root, []byte("<?")) {
		root = bytes.TrimLeft(root[bytes.IndexByte(root, '>')+1:], "\r\n ")
	}
	return append(append([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><x:H xmlns:x="urn:x">`+
		`<x:I/>text</x:H></soapenv:Header>`+"\n  <soapenv:Body>"), root...), "</soapenv:Body></soapenv:Envelope>"...)
}

// insurabilityBody is the request body the client sends, as a tree (for Client.Call).
func insurabilityBody(t testing.TB, req InsurabilityRequest, o requestOrigin, reference string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(appendInsurabilityRequest(nil, req, o, reference)))
	return doc.Root()
}

// excC14N returns xmllint's exclusive canonical form (without comments) of the document b.
func excC14N(t testing.TB, b []byte) []byte {
	t.Helper()
	bin := xmllint(t)
	f := filepath.Join(t.TempDir(), "payload.xml")
	require.NoError(t, os.WriteFile(f, b, 0o600))
	out, err := exec.Command(bin, "--nonet", "--exc-c14n", f).Output()
	require.NoError(t, err)
	return out
}

func TestGenericInsurabilitySchemas_10DiffersFrom11OnlyInValues(t *testing.T) {
	norm := func(path string) []string {
		b, err := os.ReadFile(filepath.Join(xsdDir, path))
		require.NoError(t, err)
		s := regexp.MustCompile(`(?s)<xs:annotation.*?</xs:annotation>|<!--.*?-->`).ReplaceAllString(string(b), "")
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	v10, v11 := norm(xsdGenIns10Core), norm(xsdGenIns11Core)
	only := func(a, b []string) []string {
		seen := map[string]int{}
		for _, l := range b {
			seen[l]++
		}
		var out []string
		for _, l := range a {
			if seen[l] > 0 {
				seen[l]--
				continue
			}
			out = append(out, l)
		}
		return out
	}
	require.Equal(t, []string{
		`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:be:fgov:ehealth:genericinsurability:core:v1" targetNamespace="urn:be:fgov:ehealth:genericinsurability:core:v1" elementFormDefault="qualified" attributeFormDefault="unqualified" version="1.1">`,
		`<xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="../../external/XSD/xml.xsd"/>`,
		`<xs:pattern value="750|999|[1-69][0-9]{2}"/>`,
		`<xs:enumeration value="000"/>`,
	}, only(v11, v10))
	require.Equal(t, []string{
		`<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:be:fgov:ehealth:genericinsurability:core:v1" targetNamespace="urn:be:fgov:ehealth:genericinsurability:core:v1" elementFormDefault="qualified" attributeFormDefault="unqualified" version="1.0">`,
		`<xs:pattern value="[1-69][0-9]{2}"/>`,
	}, only(v10, v11))
}

// readAnswer reads a corpus file and returns its root element, after checking that xmllint
// finds it valid: the corpus is written to the schemas.
func readAnswer(t *testing.T, name, schema string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(readAnswerBytes(t, name, schema)))
	return doc.Root()
}

// readAnswerBytes reads a corpus file after checking that xmllint finds it valid.
func readAnswerBytes(t *testing.T, name, schema string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "answers", name))
	require.NoError(t, err)
	requireValid(t, schema, b)
	return b
}

func day(s string) time.Time {
	d, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestInsurabilityAnswers_Corpus(t *testing.T) {
	xmllint(t)
	parse := func(name, ref string) (InsurabilityAnswer, error) {
		a, err := parseInsurabilityResponse(readAnswerBytes(t, name, xsdInsurability), ref)
		// The same answer in a SOAP envelope, as the live path reads it, reads the same.
		b, err2 := parseInsurabilityEnvelope(inEnvelope(t, readAnswerBytes(t, name, xsdInsurability)), ref)
		require.Equal(t, a, b)
		require.Equal(t, err, err2)
		return a, err
	}
	a, err := parse("insurability-success.xml", "12345678901234")
	require.NoError(t, err)
	require.Equal(t, InsurabilityAnswer{
		ReturnCode: ReturnCode{Major: "00", Minor: "00", Detail: "00000"},
		Requested:  day("2026-12-02"),
		CareReceiver: CareReceiver{SSIN: "93051822361", RegNrWithMut: "0123456789012", Mutuality: "300", FirstName: "Lotte", LastName: "Peeters",
			Birthday: day("1993-05-18"), Sex: "female"},
		Coverages: []Coverage{{Communicated: day("2026-01-05"), Begin: day("2026-01-01"), End: day("2026-12-31"),
			Entitlement: Entitlement{Code1: "110", Code2: "110", ThirdPartyPayerRegime: RegimeStandard}}},
		PaymentApproval: "PA0123456789ABCDEF0123456789ABCD", PaymentApprovalSeed: "S012345678", InvoicingOfficeCheckDigit: "42",
	}, a)
	require.True(t, a.Insured(day("2026-06-01")))
	require.False(t, a.Insured(day("2027-01-01")))
	require.False(t, a.CareReceiver.IsDeceased())

	_, err = parse("insurability-success.xml", "12345678901233")
	var re *ResponseError
	require.ErrorAs(t, err, &re, "an answer to another request is refused")
	require.Equal(t, "GetInsurabilityForPharmacistResponse/RecordCommonOutput/Reference", re.Element)

	a, err = parse("insurability-elevated-default-ns.xml", "77")
	require.NoError(t, err)
	require.Equal(t, RegimeElevated, a.Coverages[0].Entitlement.ThirdPartyPayerRegime)
	require.Equal(t, day("1985-07-30"), a.CareReceiver.Birthday, "a zoned date is the civil date")
	require.Equal(t, "07", a.InvoicingOfficeCheckDigit)

	a, err = parse("insurability-not-insured.xml", "12345678901234")
	require.NoError(t, err)
	require.True(t, a.ReturnCode.OK())
	require.Empty(t, a.Coverages)
	require.False(t, a.Insured(day("2026-12-02")))

	a, err = parse("insurability-deceased.xml", "1")
	require.NoError(t, err)
	require.True(t, a.CareReceiver.IsDeceased())
	require.Equal(t, day("2026-11-20"), a.CareReceiver.Deceased)
	require.Equal(t, RegimeNone, a.Coverages[0].Entitlement.ThirdPartyPayerRegime)
	require.Empty(t, a.PaymentApproval)

	a, err = parse("insurability-unknown-patient.xml", "12345678901234")
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, BusinessError{Service: ServiceInsurability, Code: "10", Minor: "01", Message: "00101"}, *be)
	require.Equal(t, "10", a.ReturnCode.Major, "the answer comes with the business error")

	a, err = parse("insurability-multiple-io.xml", "")
	require.ErrorAs(t, err, &be)
	require.Equal(t, []string{"1", "3"}, a.MultipleIO)

	_, err = parse("insurability-status-error.xml", "")
	require.ErrorAs(t, err, &be)
	require.Equal(t, "400", be.Code)
}

func TestGenericInsurabilityAnswers_Corpus(t *testing.T) {
	xmllint(t)
	parse := func(name, ref string) (GenericInsurabilityAnswer, error) {
		return parseGenericInsurabilityResponse(readAnswer(t, name, xsdGenIns11), ref)
	}
	a, err := parse("genins-success.xml", "12345678901234")
	require.NoError(t, err)
	require.Equal(t, GenericInsurabilityAnswer{
		CareReceiver: CareReceiver{SSIN: "93051822361", FirstName: "Lotte", LastName: "Peeters", Birthday: day("1993-05-18"), Sex: "female",
			RegNrWithMut: "0123456789012", Mutuality: "300"},
		Event:        "changeDuring",
		Payment:      Payment{ByIO: true, MaxInvoiced: []string{"2025"}},
		MedicalHouse: MedicalHouse{Begin: day("2024-01-01"), Nurse: true, Medical: true},
		Items: []InsurabilityItem{
			{RegNrWithMut: "0123456789012", Mutuality: "300", Begin: day("2026-01-01"), End: day("2026-06-30"), CT1: "110", CT2: "110", PaymentApproval: "PA-0001", InsurabilityDate: day("2026-12-02")},
			{Mutuality: "500", Begin: day("2026-07-01"), CT1: "111", CT2: "111", InsurabilityDate: day("2026-12-02")},
		},
	}, a)
	require.True(t, a.Insured(day("2026-08-01")), "an open period")

	a, err = parse("genins-deceased.xml", "")
	require.NoError(t, err)
	require.True(t, a.CareReceiver.IsDeceased(), "Deceased is a date: a deceased patient never reads as alive")
	require.Equal(t, day("2026-11-20"), a.CareReceiver.Deceased)
	require.Equal(t, Hospitalization{Hospital: "710000123456", AdmissionDate: day("2026-11-01"), AdmissionService: "210"}, a.Hospitalized)
	require.False(t, a.Payment.ByIO)

	a, err = parse("genins-not-insured.xml", "12345678901234")
	require.NoError(t, err)
	require.Empty(t, a.Items)
	require.False(t, a.Insured(day("2026-12-02")))

	for name, want := range map[string]BusinessError{
		"genins-fault-input-error.xml":   {Service: ServiceGenericInsurability, Code: "INPUT_ERROR", Minor: "160", Message: "the request is wrong (unknown patient number)"},
		"genins-fault-no-io-error.xml":   {Service: ServiceGenericInsurability, Code: "NO_IO_ERROR", Minor: "170", Message: "no insurer knows the patient"},
		"genins-fault-multiio-error.xml": {Service: ServiceGenericInsurability, Code: "MULTIIO_ERROR", Message: "several insurers claim the patient"},
	} {
		_, err := parse(name, "")
		var be *BusinessError
		require.ErrorAs(t, err, &be, name)
		require.Equal(t, want, *be, name)
		require.ErrorIs(t, err, ErrBusiness)
	}
}

func TestETKAndEHealthBoxAnswers_Corpus(t *testing.T) {
	xmllint(t)
	r, err := parseETKResponse(readAnswer(t, "etk-success.xml", xsdETK))
	require.NoError(t, err)
	require.Equal(t, []byte{0x30, 0x82, 0x01, 0x02, 0x03, 0x04, 0x05}, r.etk)
	r, err = parseETKResponse(readAnswer(t, "etk-matching.xml", xsdETK))
	require.NoError(t, err)
	require.Equal(t, [][]Identifier{{{Type: "CBE", Value: "0809394427", ApplicationID: "EHBOX"}}, {{Type: "CBE", Value: "0809394427", ApplicationID: "KGSS"}}}, r.matching)
	_, err = parseETKResponse(readAnswer(t, "etk-error.xml", xsdETK))
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, "NOT_FOUND", be.Code)

	ref, err := parseSendMessageResponse(readAnswer(t, "ehbox-success.xml", xsdEHealthBox), "ABCDEFGHIJ123")
	require.NoError(t, err)
	require.Equal(t, "ABCDEFGHIJ123", ref)
	_, err = parseSendMessageResponse(readAnswer(t, "ehbox-success.xml", xsdEHealthBox), "OTHER")
	require.ErrorIs(t, err, ErrResponse, "the answer to another publication")
	_, err = parseSendMessageResponse(readAnswer(t, "ehbox-out-of-office.xml", xsdEHealthBox), "ABCDEFGHIJ123")
	require.ErrorAs(t, err, &be)
	require.Equal(t, "826", be.Code)
	_, err = parseSendMessageResponse(readAnswer(t, "ehbox-rejected.xml", xsdEHealthBox), "ABCDEFGHIJ123")
	require.ErrorAs(t, err, &be)
	require.Equal(t, "811", be.Code)
}

// Answers the schema does not allow: each is first shown invalid by xmllint, then read as a
// *ResponseError naming the element at fault.
func TestAnswers_SchemaViolationsAreResponseErrors(t *testing.T) {
	xmllint(t)
	type parser func([]byte) error
	tree := func(parse func(*etree.Element) error) parser {
		return func(b []byte) error {
			doc := etree.NewDocument()
			require.NoError(t, doc.ReadFromBytes(b))
			return parse(doc.Root())
		}
	}
	ins := func(b []byte) error {
		_, err := parseInsurabilityResponse(b, "")
		_, err2 := parseInsurabilityEnvelope(inEnvelope(t, b), "")
		require.Equal(t, err, err2, "read in an envelope")
		return err
	}
	gen := tree(func(el *etree.Element) error { _, err := parseGenericInsurabilityResponse(el, ""); return err })
	etk := tree(func(el *etree.Element) error { _, err := parseETKResponse(el); return err })
	box := tree(func(el *etree.Element) error { _, err := parseSendMessageResponse(el, "ABCDEFGHIJ123"); return err })
	for _, tc := range []struct {
		name, file, schema string
		parse              parser
		from, to           string
		element            string
	}{
		{"major one character", "insurability-success.xml", xsdInsurability, ins, "<c:Major>00</c:Major>", "<c:Major>0</c:Major>", "GetInsurabilityForPharmacistResponse/ReturnInfo/ReturnCode/Major"},
		{"commonoutput for status", "insurability-success.xml", xsdInsurability, ins, `<Status><Code>200</Code><Message Lang="EN">Success</Message></Status>`, "", "GetInsurabilityForPharmacistResponse/Status"},
		{"core namespace for protocol", "insurability-success.xml", xsdInsurability, ins, "p:ReturnInfo>", "c:ReturnInfo>", "GetInsurabilityForPharmacistResponse/ReturnInfo"},
		{"deceased as boolean", "insurability-deceased.xml", xsdInsurability, ins, "<c:Deceased>2026-11-20</c:Deceased>", "<c:Deceased>true</c:Deceased>", "GetInsurabilityForPharmacistResponse/InsurabilityResponse/CareReceiver/Deceased"},
		{"regime outside enumeration", "insurability-success.xml", xsdInsurability, ins, ">standard<", ">full<", "GetInsurabilityForPharmacistResponse/InsurabilityResponse/Coverage/Entitlement/ThirdPartyPayerRegime"},
		{"two coverages", "insurability-success.xml", xsdInsurability, ins, "</c:Coverage>", "</c:Coverage><c:Coverage/>", "GetInsurabilityForPharmacistResponse/InsurabilityResponse/Coverage"},
		{"period order", "insurability-success.xml", xsdInsurability, ins, "<c:BeginDate>2026-01-01</c:BeginDate><c:EndDate>2026-12-31</c:EndDate>", "<c:EndDate>2026-12-31</c:EndDate><c:BeginDate>2026-01-01</c:BeginDate>", "GetInsurabilityForPharmacistResponse/InsurabilityResponse/Coverage/Period/BeginDate"},
		{"short payment approval", "insurability-success.xml", xsdInsurability, ins, "PA0123456789ABCDEF0123456789ABCD", "PA01", "GetInsurabilityForPharmacistResponse/InsurabilityResponse/Verification/PaymentApproval"},
		{"wrong root", "insurability-success.xml", xsdInsurability, ins, "p:GetInsurabilityForPharmacistResponse", "p:GetInsurabilityForPharmacistRequest", "GetInsurabilityForPharmacistResponse"},
		{"genins deceased boolean", "genins-deceased.xml", xsdGenIns11, gen, "<gc:Deceased>2026-11-20</gc:Deceased>", "<gc:Deceased>true</gc:Deceased>", "GetInsurabilityResponse/Response/CareReceiverDetail/Deceased"},
		{"genins unknown fault code", "genins-fault-no-io-error.xml", xsdGenIns11, gen, ">NO_IO_ERROR<", ">OOPS<", "GetInsurabilityResponse/Response/MessageFault/FaultCode"},
		{"genins missing payment", "genins-not-insured.xml", xsdGenIns11, gen, "<gc:Payment><gc:PaymentByIo>false</gc:PaymentByIo></gc:Payment>", "", "GetInsurabilityResponse/Response/InsurabilityResponseDetail/Payment"},
		{"genins six items", "genins-success.xml", xsdGenIns11, gen, "</gc:InsurabilityList>", strings.Repeat(`<gc:InsurabilityItem><gc:Mutuality>100</gc:Mutuality><gc:Period/><gc:InsurabilityDate>2026-12-02</gc:InsurabilityDate></gc:InsurabilityItem>`, 4) + "</gc:InsurabilityList>", "GetInsurabilityResponse/Response/InsurabilityResponseDetail/InsurabilityList/InsurabilityItem"},
		{"genins mutuality", "genins-success.xml", xsdGenIns11, gen, "<gc:Mutuality>500</gc:Mutuality>", "<gc:Mutuality>800</gc:Mutuality>", "GetInsurabilityResponse/Response/InsurabilityResponseDetail/InsurabilityList/InsurabilityItem/Mutuality"},
		{"etk status in etk namespace", "etk-error.xml", xsdETK, etk, "core:Status>", "etk:Status>", "GetEtkResponse/Status"},
		{"etk error code missing", "etk-error.xml", xsdETK, etk, "<etk:Code>NOT_FOUND</etk:Code>", "", "GetEtkResponse/Error/Code"},
		{"ehbox status qualified", "ehbox-success.xml", xsdEHealthBox, box, "<Status>", `<Status xmlns="urn:be:fgov:ehealth:ehbox:publication:protocol:v3">`, "SendMessageResponse/Status"},
		{"ehbox long publication id", "ehbox-success.xml", xsdEHealthBox, box, `SentPublicationId="ABCDEFGHIJ123"`, `SentPublicationId="ABCDEFGHIJ1234"`, "SendMessageResponse/@SentPublicationId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "answers", tc.file))
			require.NoError(t, err)
			require.Contains(t, string(b), tc.from)
			if tc.to == "" && strings.Contains(tc.from, "</Status>") {
				b = bytes.Replace(b, []byte(tc.from), []byte("<p:CommonOutput/>"), 1) // CommonOutput where Status belongs
			} else {
				b = bytes.ReplaceAll(b, []byte(tc.from), []byte(tc.to)) // a renamed element's start and end tags
			}
			require.Error(t, validate(t, tc.schema, b), "the mutant must be invalid for xmllint too")
			err = tc.parse(b)
			var re *ResponseError
			require.ErrorAs(t, err, &re)
			require.ErrorIs(t, err, ErrResponse)
			require.Equal(t, tc.element, re.Element, re.Error())
			require.NotContains(t, re.Error(), "93051822361")
		})
	}
}

func TestReferenceSource_UniqueNumbersOfAtMost14Digits(t *testing.T) {
	r := newReferenceSource()
	seen := map[string]bool{}
	for i := 0; i < 20000; i++ {
		v := r.next()
		require.Regexp(t, `^[1-9][0-9]{0,13}$`, v)
		require.False(t, seen[v], "reference %s repeated", v)
		seen[v] = true
	}
	r.n.Store(maxReference - 2) // wraps inside the range, never 0
	for i := 0; i < 4; i++ {
		require.Regexp(t, `^[1-9][0-9]{0,13}$`, r.next())
	}
}

func TestEHealthBoxMessage_BuildAndNormalize(t *testing.T) {
	m, err := EHealthBoxMessage{Recipients: []EHealthBoxAddress{{ID: "1", Type: "NIHII", Quality: "DOCTOR"}}, Title: "t", Content: []byte("c")}.normalize()
	require.NoError(t, err)
	require.Regexp(t, `^[A-Za-z0-9]{13}$`, m.PublicationID)
	el := buildSendMessageRequest(m, testOrigin())
	require.Equal(t, m.PublicationID, el.SelectAttrValue("PublicationId", ""))
	require.Equal(t, base64.StdEncoding.EncodeToString([]byte("c")), textAt(el, "ContentContext", "Content", "Document", "EncryptableTextContent"))
	require.Equal(t, "Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y=", textAt(el, "ContentContext", "Content", "Document", "Digest"), "base64 SHA-256 of the content")
	require.Equal(t, "ehgate test", textAt(el, "ContentContext", "ContentSpecification", "ApplicationName"))

	ok := EHealthBoxMessage{Recipients: []EHealthBoxAddress{{ID: "1", Type: "NIHII", Quality: "DOCTOR"}}, Title: "t", Content: []byte("c")}
	for name, mut := range map[string]func(*EHealthBoxMessage){
		"long id":      func(m *EHealthBoxMessage) { m.PublicationID = "ABCDEFGHIJ1234" },
		"id charset":   func(m *EHealthBoxMessage) { m.PublicationID = "ab-c" },
		"no recipient": func(m *EHealthBoxMessage) { m.Recipients = nil },
		"no quality":   func(m *EHealthBoxMessage) { m.Recipients[0].Quality = "" },
		"no title":     func(m *EHealthBoxMessage) { m.Title = "" },
		"long title":   func(m *EHealthBoxMessage) { m.Title = strings.Repeat("é", 401) },
		"no content":   func(m *EHealthBoxMessage) { m.Content = nil },
	} {
		c := ok
		c.Recipients = append([]EHealthBoxAddress(nil), ok.Recipients...)
		mut(&c)
		_, err := c.normalize()
		require.ErrorIs(t, err, ErrRequest, name)
	}
}

func TestWrite_NormalizeAndPayload(t *testing.T) {
	payload := []byte(`<x:Attest xmlns:x="urn:example"><x:Key>k-1</x:Key></x:Attest>`)
	w, err := Write{Service: "mycareneteattest:v3", Action: "urn:example:send", Body: payload, IdempotencyKey: "k-1", Partition: "93051822361"}.normalize()
	require.NoError(t, err)
	h := partitionHash(w.Partition)
	require.NotContains(t, h, "93051822361")
	require.Equal(t, h, partitionHash("93051822361"), "stable across replays")
	action, b, err := decodeWritePayload(encodeWritePayload(w.Action, w.Body))
	require.NoError(t, err)
	require.Equal(t, "urn:example:send", action)
	require.Equal(t, payload, b)
	_, _, err = decodeWritePayload([]byte("claim"))
	require.ErrorIs(t, err, errWritePayload, "an entry of the old format is recognised")

	for name, bad := range map[string]Write{
		"no service":  {Body: payload, IdempotencyKey: "k"},
		"no key":      {Service: "s", Body: payload},
		"key charset": {Service: "s", Body: payload, IdempotencyKey: "a b"},
		"long key":    {Service: "s", Body: payload, IdempotencyKey: strings.Repeat("k", 65)},
		"no body":     {Service: "s", IdempotencyKey: "k"},
		"text body":   {Service: "s", Body: []byte("claim"), IdempotencyKey: "k"},
		"two roots":   {Service: "s", Body: []byte("<a/><b/>"), IdempotencyKey: "k"},
		"huge body":   {Service: "s", Body: append([]byte("<a>"), make([]byte, MaxWritePayload)...), IdempotencyKey: "k"},
		"action line": {Service: "s", Action: "a\nb", Body: payload, IdempotencyKey: "k"},
	} {
		_, err := bad.normalize()
		require.ErrorIs(t, err, ErrRequest, name)
	}

	ref, err := parseWriteAnswer(body(t, `<r:Ack xmlns:r="urn:x"><Status><Code>200</Code><Message>ok</Message></Status></r:Ack>`), "s", "k")
	require.NoError(t, err)
	require.Equal(t, "k", ref)
	_, err = parseWriteAnswer(body(t, `<r:Ack xmlns:r="urn:x"><Status><Code>400</Code><Message>no</Message></Status></r:Ack>`), "s", "k")
	require.ErrorIs(t, err, ErrBusiness)
}
