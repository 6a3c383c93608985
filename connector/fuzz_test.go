package connector

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// Every parser of the platform's answers gets its bytes through soap's bounded parser, as in
// production, and must never panic, and its errors must never carry a patient number.

func fuzzBody(data []byte) (*etree.Element, bool) {
	doc, err := soap.ParseDocument(bytes.NewReader(data), soap.Limits{MaxBytes: 1 << 20})
	if err != nil || doc.Root() == nil {
		return nil, false
	}
	return doc.Root(), true
}

func FuzzParseInsurabilityResponse(f *testing.F) {
	f.Add([]byte(insurabilityOK))
	f.Add([]byte(`<GetInsurabilityForPharmacistResponse><ReturnInfo><ReturnCode><Major>1</Major><Detail>unknown 93051822361</Detail></ReturnCode></ReturnInfo></GetInsurabilityForPharmacistResponse>`))
	f.Add([]byte(`<GetInsurabilityForPharmacistResponse><ReturnInfo><ReturnCode Major="0"/></ReturnInfo><InsurabilityResponse><Coverage/><Coverage><Period><BeginDate>x</BeginDate></Period></Coverage></InsurabilityResponse></GetInsurabilityForPharmacistResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		_, err := parseInsurabilityResponse(el)
		if err != nil && bytes.Contains([]byte(err.Error()), []byte("93051822361")) {
			t.Fatalf("error carries a patient number: %v", err)
		}
	})
}

func FuzzParseGenericInsurabilityResponse(f *testing.F) {
	f.Add([]byte(genericOK))
	f.Add([]byte(`<GetInsurabilityResponse><Response><MessageFault><FaultCode>NO_IO_ERROR</FaultCode><Details><Detail>93051822361</Detail></Details></MessageFault></Response></GetInsurabilityResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		_, err := parseGenericInsurabilityResponse(el)
		if err != nil && bytes.Contains([]byte(err.Error()), []byte("93051822361")) {
			t.Fatalf("error carries a patient number: %v", err)
		}
	})
}

func FuzzParseETKResponse(f *testing.F) {
	der := testETK(f, Identifier{Type: "SSIN", Value: "93051822361"}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	f.Add([]byte(`<GetEtkResponse><Status><Code>200</Code></Status><ETK>` + base64.StdEncoding.EncodeToString(der) + `</ETK></GetEtkResponse>`))
	f.Add([]byte(`<GetEtkResponse><Status><Code>200</Code></Status><MatchingEtk><Identifier><Type>CBE</Type><Value>1</Value></Identifier></MatchingEtk></GetEtkResponse>`))
	f.Add([]byte(`<GetEtkResponse><Error><Code>NOT_FOUND</Code><Message>x</Message></Error></GetEtkResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		r, err := parseETKResponse(el)
		if err == nil && r.etk != nil {
			_, _ = ParseETK(r.etk)
		}
	})
}

func FuzzParseETK(f *testing.F) {
	f.Add(testETK(f, Identifier{Type: "NIHII", Value: "12345678"}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)))
	f.Add(wrapETK(f, []byte("not a certificate")))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09})
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = ParseETK(der)
	})
}

func FuzzParseWriteResponse(f *testing.F) {
	f.Add([]byte(`<SendTarificationResponse><Status><Code>200</Code></Status><Reference>k</Reference></SendTarificationResponse>`))
	f.Add([]byte(`<SendTarificationResponse><Status><Code>400</Code><Message>bad</Message></Status></SendTarificationResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		_, _ = parseWriteResponse(el, "k")
	})
}
