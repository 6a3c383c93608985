package connector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
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

func TestInsurabilityRequest_Build(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	req, err := InsurabilityRequest{SSIN: "93.05.18-223.61"}.normalize(now)
	require.NoError(t, err)
	el := buildInsurabilityRequest(req, requestOrigin{IsTest: true, Package: PackageLicense{Username: "u", Password: "p"}, NIHII: "12345678901"}, "ref1")
	doc := etree.NewDocument()
	doc.SetRoot(el)
	s, err := doc.WriteToString()
	require.NoError(t, err)
	require.Contains(t, s, `xmlns:ins="`+NSInsurabilityProtocol+`"`)
	require.Equal(t, "93051822361", textAt(el, "InsurabilityRequest", "CareReceiver", "Ssin"))
	require.Equal(t, "2026-11-23", textAt(el, "InsurabilityRequest", "Date"))
	require.Equal(t, "information", textAt(el, "InsurabilityRequest", "RequestType"))
	require.Equal(t, "true", textAt(el, "CommonInput", "Request", "IsTest"))
	require.Equal(t, "12345678901", textAt(el, "CommonInput", "Origin", "CareProvider", "Nihii"))
	require.Equal(t, "ref1", textAt(el, "RecordCommonInput", "Reference"))

	req, err = InsurabilityRequest{RegNrWithMut: "12345678901", Mutuality: "300", RequestType: RequestInvoicing}.normalize(now)
	require.NoError(t, err)
	el = buildInsurabilityRequest(req, requestOrigin{}, "r")
	require.Equal(t, "300", textAt(el, "InsurabilityRequest", "CareReceiver", "Mutuality"))
	require.Nil(t, find(el, "InsurabilityRequest", "CareReceiver", "Ssin"))
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

const insurabilityOK = `<p:GetInsurabilityForPharmacistResponse xmlns:p="urn:be:fgov:ehealth:insurability:protocol:v2" xmlns:c="urn:be:fgov:ehealth:insurability:core:v2">
 <c:CommonOutput/><c:RecordCommonOutput/>
 <c:ReturnInfo><c:ReturnCode><c:Major>0</c:Major><c:Minor>0</c:Minor></c:ReturnCode></c:ReturnInfo>
 <c:InsurabilityResponse>
  <c:CareReceiver><c:Ssin>93051822361</c:Ssin><c:RegNrWithMut>1234</c:RegNrWithMut><c:Mutuality>300</c:Mutuality>
   <c:FirstName>Lotte</c:FirstName><c:LastName>Peeters</c:LastName><c:Birthday>1993-05-18</c:Birthday><c:Sex>female</c:Sex></c:CareReceiver>
  <c:Coverage><c:Period><c:BeginDate>2015-01-01</c:BeginDate><c:EndDate>2099-12-31</c:EndDate></c:Period>
   <c:Entitlement><c:Code1>110</c:Code1><c:Code2>110</c:Code2><c:ThirdPartyPayerRegime>standard</c:ThirdPartyPayerRegime></c:Entitlement></c:Coverage>
  <c:Verification><c:PaymentApproval>PA00000001</c:PaymentApproval></c:Verification>
 </c:InsurabilityResponse>
</p:GetInsurabilityForPharmacistResponse>`

func TestParseInsurabilityResponse(t *testing.T) {
	a, err := parseInsurabilityResponse(body(t, insurabilityOK))
	require.NoError(t, err)
	require.Equal(t, "0", a.ReturnCode.Major)
	require.Equal(t, "Lotte", a.CareReceiver.FirstName)
	require.Equal(t, time.Date(1993, 5, 18, 0, 0, 0, 0, time.UTC), a.CareReceiver.Birthday)
	require.Len(t, a.Coverages, 1)
	require.Equal(t, "standard", a.Coverages[0].Entitlement.ThirdPartyPayerRegime)
	require.Equal(t, "PA00000001", a.PaymentApproval)
	require.True(t, a.Insured(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	require.False(t, a.Insured(time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)))

	unknown := `<GetInsurabilityForPharmacistResponse xmlns="urn:be:fgov:ehealth:insurability:protocol:v2"><ReturnInfo><ReturnCode><Major>1</Major><Minor>12</Minor><Detail>unknown person</Detail></ReturnCode></ReturnInfo></GetInsurabilityForPharmacistResponse>`
	a, err = parseInsurabilityResponse(body(t, unknown))
	require.ErrorIs(t, err, ErrBusiness)
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, "1", be.Code)
	require.Equal(t, "12", be.Minor)
	require.Equal(t, "1", a.ReturnCode.Major)

	for name, xml := range map[string]string{
		"wrong root":   `<Other/>`,
		"no return":    `<GetInsurabilityForPharmacistResponse/>`,
		"no major":     `<GetInsurabilityForPharmacistResponse><ReturnInfo><ReturnCode/></ReturnInfo></GetInsurabilityForPharmacistResponse>`,
		"no response":  `<GetInsurabilityForPharmacistResponse><ReturnInfo><ReturnCode><Major>0</Major></ReturnCode></ReturnInfo></GetInsurabilityForPharmacistResponse>`,
		"bad birthday": strings.Replace(insurabilityOK, "1993-05-18", "18/05/1993", 1),
		"bad period":   strings.Replace(insurabilityOK, "2015-01-01", "x", 1),
	} {
		_, err := parseInsurabilityResponse(body(t, xml))
		require.ErrorIs(t, err, ErrResponse, name)
		require.NotContains(t, err.Error(), "93051822361", name)
	}
}

const genericOK = `<gi:GetInsurabilityResponse xmlns:gi="urn:be:fgov:ehealth:genericinsurability:protocol:v1" xmlns:c="urn:be:fgov:ehealth:genericinsurability:core:v1">
 <c:CommonOutput/>
 <c:Response>
  <c:CareReceiverId><c:Inss>93051822361</c:Inss></c:CareReceiverId>
  <c:CareReceiverDetail><c:FirstName>Lotte</c:FirstName><c:LastName>Peeters</c:LastName><c:BirthDate>1993-05-18</c:BirthDate><c:Sex>female</c:Sex></c:CareReceiverDetail>
  <c:InsurabilityResponseDetail>
   <c:Payment><c:ByIO>true</c:ByIO></c:Payment>
   <c:InsurabilityList><c:InsurabilityItem><c:RegNrWithMut>1234</c:RegNrWithMut><c:Mutuality>300</c:Mutuality>
    <c:Period><c:PeriodStart>2015-01-01</c:PeriodStart><c:PeriodEnd>2099-12-31</c:PeriodEnd></c:Period>
    <c:CT1>110</c:CT1><c:CT2>110</c:CT2><c:PaymentApproval>PA1</c:PaymentApproval></c:InsurabilityItem></c:InsurabilityList>
  </c:InsurabilityResponseDetail>
 </c:Response>
</gi:GetInsurabilityResponse>`

func TestGenericInsurability_BuildAndParse(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	req, err := GenericInsurabilityRequest{SSIN: "93051822361"}.normalize(now)
	require.NoError(t, err)
	el := buildGenericInsurabilityRequest(req, requestOrigin{}, "in1")
	require.Equal(t, "93051822361", textAt(el, "Request", "CareReceiverId", "Inss"))
	require.Equal(t, "2026-11-23", textAt(el, "Request", "InsurabilityRequestDetail", "Period", "PeriodEnd"))
	require.Equal(t, "ambulatory_care", textAt(el, "Request", "InsurabilityRequestDetail", "InsurabilityContactType"))
	require.Equal(t, "in1", textAt(el, "RecordCommonInput", "InputReference"))

	_, err = GenericInsurabilityRequest{SSIN: "93051822361", PeriodStart: now, PeriodEnd: now.AddDate(0, 0, -1)}.normalize(now)
	require.ErrorIs(t, err, ErrRequest)

	a, err := parseGenericInsurabilityResponse(body(t, genericOK))
	require.NoError(t, err)
	require.Equal(t, "93051822361", a.CareReceiver.SSIN)
	require.Equal(t, "true", a.Payment)
	require.Len(t, a.Items, 1)
	require.Equal(t, "110", a.Items[0].CT1)
	require.True(t, a.Insured(now))

	fault := `<GetInsurabilityResponse><Response><CareReceiverId><Inss>93051822361</Inss></CareReceiverId><MessageFault><FaultCode>NO_IO_ERROR</FaultCode><FaultSource>IO</FaultSource></MessageFault></Response></GetInsurabilityResponse>`
	_, err = parseGenericInsurabilityResponse(body(t, fault))
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, "NO_IO_ERROR", be.Code)
	require.NotContains(t, err.Error(), "93051822361")

	for _, xml := range []string{`<X/>`, `<GetInsurabilityResponse/>`, `<GetInsurabilityResponse><Response/></GetInsurabilityResponse>`,
		`<GetInsurabilityResponse><Response><MessageFault/></Response></GetInsurabilityResponse>`} {
		_, err := parseGenericInsurabilityResponse(body(t, xml))
		require.ErrorIs(t, err, ErrResponse, xml)
	}
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

func TestETKResponse_Parse(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	id := Identifier{Type: "SSIN", Value: "93051822361"}
	der := testETK(t, id, now.AddDate(1, 0, 0))
	ok := `<GetEtkResponse xmlns="urn:be:fgov:ehealth:etkdepot:1_0:protocol"><Status><Code>200</Code></Status><ETK>` +
		base64.StdEncoding.EncodeToString(der) + `</ETK></GetEtkResponse>`
	r, err := parseETKResponse(body(t, ok))
	require.NoError(t, err)
	require.Equal(t, der, r.etk)

	matching := `<GetEtkResponse><Status><Code>200</Code></Status>
	 <MatchingEtk><Identifier><Type>CBE</Type><Value>1</Value><ApplicationID>A</ApplicationID></Identifier></MatchingEtk>
	 <MatchingEtk><Type>CBE</Type><Value>1</Value><ApplicationID>B</ApplicationID></MatchingEtk></GetEtkResponse>`
	r, err = parseETKResponse(body(t, matching))
	require.NoError(t, err)
	require.Equal(t, [][]Identifier{{{Type: "CBE", Value: "1", ApplicationID: "A"}}, {{Type: "CBE", Value: "1", ApplicationID: "B"}}}, r.matching)

	_, err = parseETKResponse(body(t, `<GetEtkResponse><Status><Code>200</Code></Status><Error><Code>NOT_FOUND</Code><Message>no etk</Message></Error></GetEtkResponse>`))
	var be *BusinessError
	require.ErrorAs(t, err, &be)
	require.Equal(t, "NOT_FOUND", be.Code)

	for _, xml := range []string{`<X/>`, `<GetEtkResponse><Status><Code>500</Code></Status></GetEtkResponse>`,
		`<GetEtkResponse><Status><Code>200</Code></Status></GetEtkResponse>`,
		`<GetEtkResponse><Status><Code>200</Code></Status><ETK>!!!</ETK></GetEtkResponse>`} {
		_, err := parseETKResponse(body(t, xml))
		require.ErrorIs(t, err, ErrResponse, xml)
	}

	el := buildETKRequest(Identifier{Type: "CBE", Value: "0809394427", ApplicationID: "MYCARENET"})
	require.Equal(t, "MYCARENET", textAt(el, "SearchCriteria", "Identifier", "ApplicationID"))
	_, err = Identifier{Type: "SSIN", Value: "93051822362"}.validate()
	require.ErrorIs(t, err, ErrInvalidSSIN)
	_, err = Identifier{Type: "cbe", Value: "1"}.validate()
	require.ErrorIs(t, err, ErrRequest)
}

func TestWrite_BuildAndParse(t *testing.T) {
	w, err := Write{Partition: "93051822361", Payload: []byte("claim")}.normalize()
	require.NoError(t, err)
	require.Len(t, w.IdempotencyKey, 32)
	h := partitionHash(w.Partition)
	require.NotContains(t, h, "93051822361")
	require.Equal(t, h, partitionHash("93051822361"), "stable across replays")
	el := buildWriteRequest(w, h, requestOrigin{})
	require.Equal(t, w.IdempotencyKey, textAt(el, "CommonInput", "InputReference"))
	require.Equal(t, h, textAt(el, "Partition"))
	require.Equal(t, base64.StdEncoding.EncodeToString([]byte("claim")), textAt(el, "Detail"))

	ref, err := parseWriteResponse(body(t, `<SendTarificationResponse><Status><Code>200</Code></Status><Reference>`+w.IdempotencyKey+`</Reference></SendTarificationResponse>`), w.IdempotencyKey)
	require.NoError(t, err)
	require.Equal(t, w.IdempotencyKey, ref)
	_, err = parseWriteResponse(body(t, `<SendTarificationResponse><Status><Code>400</Code><Message>bad claim</Message></Status></SendTarificationResponse>`), w.IdempotencyKey)
	require.ErrorIs(t, err, ErrBusiness)
	_, err = parseWriteResponse(body(t, `<SendTarificationResponse><Status><Code>200</Code></Status><Reference>other</Reference></SendTarificationResponse>`), w.IdempotencyKey)
	require.ErrorIs(t, err, ErrResponse)

	for _, bad := range []Write{{Payload: nil}, {Service: "other", Payload: []byte("x")}, {IdempotencyKey: "a b", Payload: []byte("x")},
		{IdempotencyKey: strings.Repeat("k", 65), Payload: []byte("x")}, {Payload: make([]byte, MaxWritePayload+1)}} {
		_, err := bad.normalize()
		require.ErrorIs(t, err, ErrRequest)
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
