package platformtest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// payload returns the first element of an answer's Body (the message or
// the soapenv:Fault) as a document of its own.
func payload(t *testing.T, b []byte) *etree.Element {
	t.Helper()
	doc, err := soap.Parse(bytesReader(b), soap.Limits{})
	require.NoError(t, err)
	el, err := soap.BodyContent(doc)
	require.NoError(t, err)
	require.NotNil(t, el)
	return el
}

// standalone serialises el as a document (its namespace declarations are
// on it: platformtest declares them on each payload).
func standalone(t *testing.T, el *etree.Element) []byte {
	t.Helper()
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	b, err := d.WriteToBytes()
	require.NoError(t, err)
	return b
}

// requireValid checks a message with platformtest's validator and with
// xmllint, the independent judge.
func requireValid(t *testing.T, s platformtest.Schema, el *etree.Element, what string) {
	t.Helper()
	doc := standalone(t, el)
	require.NoError(t, platformtest.Validate(s, doc), what)
	ok, diag := xmllintValidate(t, s, doc)
	require.True(t, ok, "%s: %s\n%s", what, diag, doc)
}

// requireFaultValid checks a SOAP fault answer: HTTP 500 and every detail
// entry valid against the platform's SOA errors schema.
func requireFaultValid(t *testing.T, status int, b []byte, code, what string) {
	t.Helper()
	require.Equal(t, http.StatusInternalServerError, status, string(b))
	f := payload(t, b)
	require.Equal(t, "Fault", f.Tag)
	detail := f.SelectElement("detail")
	require.NotNil(t, detail, string(b))
	entries := detail.ChildElements()
	require.Len(t, entries, 1)
	require.Equal(t, code, entries[0].SelectElement("Code").Text())
	requireValid(t, platformtest.SchemaSOAError, entries[0], what)
}

// Every kind of answer platformtest gives validates against its schema,
// judged by xmllint: the STS's samlp:Response, insurability v2 and GenericInsurability successes
// (insured, lapsed, deceased) and business answers (unknown, input error),
// the ETK depot's three answers, eHealthBox acceptance, duplicate and
// rejection, the SOAP faults (schema violation, security, injected), and
// the service list in both versions.
func TestAnswers_EveryAnswerValidatesWithXmllint(t *testing.T) {
	xmllintPath(t)
	p := start(t, platformtest.Config{Seed: 11})
	ph, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Schema")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", ph)
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceSTS, "ehealth"), platformtest.ActionSTS,
		signWithCert(t, ph.Key, ph.Certificate, tokenRequest(ph, ph.Certificate, ph.Claims(), ph.Certified())))
	require.Equal(t, http.StatusOK, status, string(b))
	requireValid(t, platformtest.SchemaSAMLProtocol, payload(t, b), "sts samlp:Response")
	insured := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured && !pt.Deceased })
	lapsed := pick(t, p, func(pt platformtest.Patient) bool { return pt.Known && !pt.Insured })
	deceased := pick(t, p, func(pt platformtest.Patient) bool { return pt.Deceased })
	unknown := pick(t, p, func(pt platformtest.Patient) bool { return !pt.Known })

	call := func(service, action string, body *etree.Element) (int, []byte) {
		return post(t, p.HTTPClient(), p.URL(service, "ehealth"), action, signWithToken(t, ph.Key, token, body))
	}
	for name, ssin := range map[string]string{"insured": insured.SSIN, "lapsed": lapsed.SSIN, "deceased": deceased.SSIN, "unknown": unknown.SSIN, "bad check digits": "12345678901"} {
		status, b := call(platformtest.ServiceInsurability, platformtest.ActionInsurability, insurabilityRequest(ssin, time.Now()))
		require.Equal(t, http.StatusOK, status, string(b))
		el := payload(t, b)
		requireValid(t, platformtest.SchemaInsurability, el, "insurability "+name)
		if name == "deceased" {
			require.Equal(t, deceased.DeceasedOn.Format("2006-01-02"), el.FindElement("./InsurabilityResponse/CareReceiver/Deceased").Text())
		}

		status, b = call(platformtest.ServiceGenericInsurability, platformtest.ActionGenericInsurability, genericRequest(ssin))
		require.Equal(t, http.StatusOK, status, string(b))
		el = payload(t, b)
		requireValid(t, platformtest.SchemaGenericInsurability, el, "genericinsurability "+name)
		require.NoError(t, platformtest.ValidateElement(platformtest.SchemaGenericInsurability10, el), "also valid under 1.0")
	}

	for name, id := range map[string][3]string{"one": {"CBE", "0809394427", ""}, "several": {"EHP", "1990001916", ""}, "none": {"CBE", "0000000000", ""}} {
		req := sampleRequest("etk-request.xml")
		ident := req.FindElement(".//Identifier")
		ident.SelectElement("Type").SetText(id[0])
		ident.SelectElement("Value").SetText(id[1])
		ident.RemoveChild(ident.SelectElement("ApplicationID"))
		msg, err := soap.Marshal(soap.NewEnvelope(req))
		require.NoError(t, err)
		status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceETK, "ehealth"), platformtest.ActionETK, msg)
		require.Equal(t, http.StatusOK, status, string(b))
		el := payload(t, b)
		requireValid(t, platformtest.SchemaETK, el, "etk "+name)
		require.Equal(t, platformtest.NSCommons10Core, el.SelectElement("Status").NamespaceURI())
	}

	p.SetWriteValidator(func(w platformtest.Write) error {
		if string(w.Detail) == "refuse" {
			return errTest
		}
		return nil
	})
	for _, tc := range []struct{ name, id, content string }{{"accepted", "PUB1", "hello"}, {"duplicate", "PUB1", "hello"}, {"rejected", "PUB2", "refuse"}} {
		status, b := call(platformtest.ServiceEHealthBox, platformtest.ActionEHealthBox, ehboxRequest(tc.id, "NIHII", "25123456", []byte(tc.content)))
		require.Equal(t, http.StatusOK, status, string(b))
		requireValid(t, platformtest.SchemaEHealthBox, payload(t, b), "ehbox "+tc.name)
	}

	// Faults: a request that breaks its schema, a security refusal, an
	// access refusal, an injected SOA-02001.
	bad := insurabilityRequest(insured.SSIN, time.Now())
	bad.FindElement(".//RecordCommonInput/Reference").SetText("ref-not-a-number")
	status, b = call(platformtest.ServiceInsurability, platformtest.ActionInsurability, bad)
	requireFaultValid(t, status, b, platformtest.CodeXSDCompliance, "schema violation fault")
	oKey, _ := outsider()
	status, b = post(t, p.HTTPClient(), p.URL(platformtest.ServiceInsurability, "ehealth"), platformtest.ActionInsurability, signWithToken(t, oKey, token, insurabilityRequest(insured.SSIN, time.Now())))
	requireFaultValid(t, status, b, "SOA-01001", "security fault")
	p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultSOAP})
	status, b = call(platformtest.ServiceInsurability, platformtest.ActionInsurability, insurabilityRequest(insured.SSIN, time.Now()))
	requireFaultValid(t, status, b, "SOA-02001", "injected fault")
	p.Site("ehealth").Clear(platformtest.ServiceInsurability)

	for _, v := range []int{1, 2} {
		q := start(t, platformtest.Config{ListVersion: v})
		_, root := fetchList(t, q)
		requireValid(t, map[int]platformtest.Schema{1: platformtest.SchemaServiceListV1, 2: platformtest.SchemaServiceListV2}[v], root, "service list")
	}
}

var errTest = errTestT("refused by the test's rule")

type errTestT string

func (e errTestT) Error() string { return string(e) }

// A request that does not validate against its schema is refused with the
// platform's SOA-03006 fault, before any business processing, and is not
// recorded; the same request made valid is served.
func TestRequests_SchemaViolationsGetTheXSDComplianceFault(t *testing.T) {
	p := start(t, platformtest.Config{})
	ph, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Strikt")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", ph)
	patient := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })
	call := func(service, action string, body *etree.Element) (int, *soap.Fault) {
		status, b := post(t, p.HTTPClient(), p.URL(service, "ehealth"), action, signWithToken(t, ph.Key, token, body))
		_, f := answer(t, b)
		return status, f
	}
	tests := []struct {
		name, service, action string
		body                  func() *etree.Element
		path                  string
	}{
		{"reference is not a number", platformtest.ServiceInsurability, platformtest.ActionInsurability, func() *etree.Element {
			r := insurabilityRequest(patient.SSIN, time.Now())
			r.FindElement(".//RecordCommonInput/Reference").SetText("4f2a9c")
			return r
		}, "/GetInsurabilityForPharmacistRequest/RecordCommonInput/Reference"},
		{"request type is a word", platformtest.ServiceInsurability, platformtest.ActionInsurability, func() *etree.Element {
			r := insurabilityRequest(patient.SSIN, time.Now())
			r.FindElement(".//RequestType").SetText("information")
			return r
		}, "/GetInsurabilityForPharmacistRequest/InsurabilityRequest/RequestType"},
		{"common input in the core namespace", platformtest.ServiceInsurability, platformtest.ActionInsurability, func() *etree.Element {
			r := insurabilityRequest(patient.SSIN, time.Now())
			r.SelectElement("CommonInput").Space = "core"
			return r
		}, "/GetInsurabilityForPharmacistRequest"},
		{"nihii as plain text", platformtest.ServiceGenericInsurability, platformtest.ActionGenericInsurability, func() *etree.Element {
			r := genericRequest(patient.SSIN)
			n := r.FindElement(".//CareProvider/Nihii")
			for _, c := range n.ChildElements() {
				n.RemoveChild(c)
			}
			n.SetText("10012345678")
			return r
		}, "/GetInsurabilityRequest/CommonInput/Origin/CareProvider/Nihii"},
		{"publication id too long", platformtest.ServiceEHealthBox, platformtest.ActionEHealthBox, func() *etree.Element {
			return ehboxRequest("P1234567890123", "NIHII", "25123456", []byte("x"))
		}, "/SendMessageRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, f := call(tt.service, tt.action, tt.body())
			require.Equal(t, http.StatusInternalServerError, status)
			require.NotNil(t, f)
			require.Equal(t, "soapenv:Client", f.Code)
			require.Equal(t, []string{platformtest.CodeXSDCompliance}, f.FaultCodes())
			require.Contains(t, f.String, "XSD compliance failure: "+tt.path)
			require.NotContains(t, f.String, patient.SSIN, "no personal data in the fault")
		})
	}
	require.Equal(t, len(tests), p.Count("ehealth", platformtest.ServiceInsurability, platformtest.OutcomeBadRequest)+
		p.Count("ehealth", platformtest.ServiceGenericInsurability, platformtest.OutcomeBadRequest)+
		p.Count("ehealth", platformtest.ServiceEHealthBox, platformtest.OutcomeBadRequest))
	require.Empty(t, p.Writes())
	status, f := call(platformtest.ServiceInsurability, platformtest.ActionInsurability, insurabilityRequest(patient.SSIN, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, f)
}

// The STS's SAML-P token request is held to the SAML 1.1 protocol schema
// too: a request that breaks it gets SOA-03006 and no token.
func TestSTS_RequestBreakingTheSAMLSchemaGetsTheXSDComplianceFault(t *testing.T) {
	p := start(t, platformtest.Config{Patients: 10})
	ph, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek SAML")
	require.NoError(t, err)
	req := tokenRequest(ph, ph.Certificate, ph.Claims(), ph.Certified())
	req.RemoveAttr("MajorVersion") // required by samlp:RequestAbstractType
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceSTS, "ehealth"), platformtest.ActionSTS, signWithCert(t, ph.Key, ph.Certificate, req))
	requireFaultValid(t, status, b, platformtest.CodeXSDCompliance, "sts schema violation")
	require.Zero(t, p.TokensIssued())
	issue(t, p, "ehealth", ph) // the valid request is served
	require.Equal(t, 1, p.TokensIssued())
}

// GenericInsurability: the eHealth endpoint serves the 1.0 schema, the
// MyCareNet BCP endpoint 1.1; a mutuality only 1.1 knows (750) is refused
// with SOA-03006 at the first and served (a business answer) at the second.
func TestGenericInsurability_EachEndpointEnforcesTheVersionItServes(t *testing.T) {
	p := start(t, platformtest.Config{Patients: 10})
	gp, err := p.NewIdentity(platformtest.GP, "Dr. Versie")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", gp)
	req := func() *etree.Element {
		r := genericRequest("")
		cid := r.FindElement(".//CareReceiverId")
		cid.CreateElement("core:RegNrWithMut").SetText("12345678901")
		cid.CreateElement("core:Mutuality").SetText("750")
		return r
	}
	status, b := post(t, p.HTTPClient(), p.URL(platformtest.ServiceGenericInsurability, "ehealth"), platformtest.ActionGenericInsurability, signWithToken(t, gp.Key, token, req()))
	requireFaultValid(t, status, b, platformtest.CodeXSDCompliance, "1.0 at the eHealth endpoint")
	require.Contains(t, string(b), "/GetInsurabilityRequest/Request/CareReceiverId/Mutuality")

	status, b = post(t, p.HTTPClient(), p.URL(platformtest.ServiceGenericInsurability, "mycarenet"), platformtest.ActionGenericInsurability, signWithToken(t, gp.Key, token, req()))
	require.Equal(t, http.StatusOK, status, string(b))
	el := payload(t, b)
	require.Equal(t, "NO_IO_ERROR", el.FindElement("./Response/MessageFault/FaultCode").Text())
	requireValid(t, platformtest.SchemaGenericInsurability, el, "1.1 answer at the BCP endpoint")
}
