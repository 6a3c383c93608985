package platformtest

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// FuzzServiceRequests feeds arbitrary bodies, correctly signed where the
// service needs it, to every service's handler: the answer is always a
// well-formed SOAP envelope (an answer or a fault), never a panic.
func FuzzServiceRequests(f *testing.F) {
	p, err := Start(Config{Patients: 50})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.Close)
	id, err := p.NewIdentity(Pharmacy, "fuzz pharmacy")
	if err != nil {
		f.Fatal(err)
	}
	site := p.sites[0]
	a, _, err := p.issueAssertion(&exchange{site: site, now: p.now}, id, id.Certificate, append(id.Claims(), id.Certified()...))
	if err != nil {
		f.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(a)
	token, err := doc.WriteToBytes()
	if err != nil {
		f.Fatal(err)
	}
	certSigner, err := soap.NewSigner(soap.SignerConfig{Key: id.Key, Certificate: id.Certificate, SignToken: true})
	if err != nil {
		f.Fatal(err)
	}
	tokenSigner, err := soap.NewSigner(soap.SignerConfig{Key: id.Key, Assertion: token})
	if err != nil {
		f.Fatal(err)
	}
	ssin := p.patients[0].SSIN
	f.Add(uint8(0), []byte(`<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" RequestID="_1"><samlp:AttributeQuery><saml:Subject xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion"><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:holder-of-key</saml:ConfirmationMethod><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></saml:SubjectConfirmation></saml:Subject><saml:AttributeDesignator xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" AttributeNamespace="x" AttributeName="y"/></samlp:AttributeQuery></samlp:Request>`))
	f.Add(uint8(1), []byte(`<ins:GetInsurabilityForPharmacistRequest xmlns:ins="urn:be:fgov:ehealth:insurability:protocol:v2"><InsurabilityRequest><Date>2024-02-30</Date><CareReceiver><Ssin>`+ssin+`</Ssin></CareReceiver></InsurabilityRequest></ins:GetInsurabilityForPharmacistRequest>`))
	f.Add(uint8(2), []byte(`<gi:GetInsurabilityRequest xmlns:gi="urn:be:fgov:ehealth:genericinsurability:protocol:v1"><Request><CareReceiverId><RegNrWithMut>1</RegNrWithMut><Mutuality>100</Mutuality></CareReceiverId><InsurabilityRequestDetail><Period><PeriodStart>2030-01-01</PeriodStart><PeriodEnd>2020-01-01</PeriodEnd></Period></InsurabilityRequestDetail></Request></gi:GetInsurabilityRequest>`))
	for i, name := range []string{"insurability-request.xml", "genins-request.xml", "ehbox-request.xml", "etk-request.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i+1), b)
	}
	f.Add(uint8(3), []byte(`<ehboxp:SendMessageRequest xmlns:ehboxp="urn:be:fgov:ehealth:ehbox:publication:protocol:v3" PublicationId="k"><DestinationContext><Id>1</Id><Type>NIHII</Type><Quality>DOCTOR</Quality></DestinationContext></ehboxp:SendMessageRequest>`))
	f.Add(uint8(4), []byte(`<etk:GetEtkRequest xmlns:etk="urn:be:fgov:ehealth:etkdepot:1_0:protocol"><SearchCriteria><Identifier><Type>cbe</Type><Value>0809394427</Value></Identifier></SearchCriteria></etk:GetEtkRequest>`))
	f.Add(uint8(4), []byte(`<GetEtkRequest/>`))

	services := []struct {
		name   string
		handle func(*exchange) reply
		signer *soap.Signer
	}{
		{ServiceSTS, p.serveSTS, certSigner},
		{ServiceInsurability, p.serveInsurability, tokenSigner},
		{ServiceGenericInsurability, p.serveGenericInsurability, tokenSigner},
		{ServiceEHealthBox, p.serveEHealthBox, tokenSigner},
		{ServiceETK, p.serveETK, nil},
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		svc := services[int(which)%len(services)]
		in := etree.NewDocument()
		if err := in.ReadFromBytes(body); err != nil || in.Root() == nil {
			t.Skip()
		}
		env := soap.NewEnvelope(in.Root())
		var msg []byte
		if svc.signer != nil {
			if msg, err = svc.signer.Sign(env); err != nil {
				t.Skip()
			}
		} else if msg, err = soap.Marshal(env); err != nil {
			t.Skip()
		}
		x := &exchange{site: site, service: svc.name, r: httptest.NewRequest("POST", "/", nil), body: msg, now: p.now}
		rep := svc.handle(x)
		if rep.status != 200 && rep.status != 500 {
			t.Fatalf("status %d", rep.status)
		}
		if _, err := soap.Parse(bytes.NewReader(rep.body), soap.Limits{}); err != nil {
			t.Fatalf("answer is not an envelope: %v\n%s", err, rep.body)
		}
	})
}

// FuzzValidate feeds arbitrary documents to the schema validator of every
// schema: it answers (nil or an error), never panics, whatever the input.
func FuzzValidate(f *testing.F) {
	for _, name := range []string{"insurability-request.xml", "genins-request.xml", "ehbox-request.xml", "etk-request.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<x:ServiceList xmlns:x="urn:be:fgov:ehealth:bcp:protocol:v2" Id="a" IssueInstant="2026-01-01T00:00:00Z" Environment="x"><x:Service Id="1" Name="n"><x:EndpointList><x:Endpoint Order="0" Status="ACTIVE">https://x</x:Endpoint></x:EndpointList></x:Service></x:ServiceList>`))
	schemas := Schemas()
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, s := range schemas {
			_ = Validate(s, doc)
		}
	})
}
