package connector

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// addCorpus seeds f with the answers of testdata/answers whose name starts with prefix.
func addCorpus(f *testing.F, prefix string) {
	files, err := filepath.Glob(filepath.Join("testdata", "answers", prefix+"*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no corpus %s*: %v", prefix, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// noPatientNumber fails when an error text carries the corpus's patient number.
func noPatientNumber(t *testing.T, err error) {
	if err != nil && strings.Contains(err.Error(), "93051822361") {
		t.Fatalf("error carries a patient number: %v", err)
	}
}

func FuzzParseInsurabilityResponse(f *testing.F) {
	addCorpus(f, "insurability-")
	f.Add([]byte(`<GetInsurabilityForPharmacistResponse xmlns="urn:be:fgov:ehealth:insurability:protocol:v2"><Status xmlns=""><Code>200</Code><Message>93051822361</Message></Status><CommonOutput/></GetInsurabilityForPharmacistResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The reader gets the bytes as they come (no parser before it) and checks them itself;
		// whatever it accepts, encoding/xml (under soap's limits) must accept too.
		a, err := parseInsurabilityResponse(data, "12345678901234")
		noPatientNumber(t, err)
		if err == nil && !a.ReturnCode.OK() {
			t.Fatalf("a business answer read as a success: %+v", a.ReturnCode)
		}
		if _, ok := fuzzBody(data); !ok && (err == nil || errors.Is(err, ErrBusiness)) {
			t.Fatalf("read an answer that is not well-formed: %q", data)
		}
		if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("<?xml")) || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
			return // a document's prolog cannot stand in a Body
		}
		env := append(append([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>`), data...), "</s:Body></s:Envelope>"...)
		b, err2 := parseInsurabilityEnvelope(env, "12345678901234")
		noPatientNumber(t, err2)
		if (err == nil) != (err2 == nil) || (err == nil && !reflect.DeepEqual(a, b)) {
			t.Fatalf("the envelope's answer reads otherwise: %v / %v", err, err2)
		}
	})
}

func FuzzParseGenericInsurabilityResponse(f *testing.F) {
	addCorpus(f, "genins-")
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		a, err := parseGenericInsurabilityResponse(el, "")
		noPatientNumber(t, err)
		if err == nil && len(a.Items) > maxGenInsItems {
			t.Fatalf("%d items, the schema allows %d", len(a.Items), maxGenInsItems)
		}
	})
}

func FuzzParseSendMessageResponse(f *testing.F) {
	addCorpus(f, "ehbox-")
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		ref, err := parseSendMessageResponse(el, "ABCDEFGHIJ123")
		if err == nil && ref != "ABCDEFGHIJ123" {
			t.Fatalf("accepted the answer to another publication: %q", ref)
		}
	})
}

func FuzzParseETKResponse(f *testing.F) {
	der := testETK(f, Identifier{Type: "SSIN", Value: "93051822361"}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	addCorpus(f, "etk-")
	f.Add([]byte(`<GetEtkResponse xmlns="urn:be:fgov:ehealth:etkdepot:1_0:protocol" xmlns:c="urn:be:fgov:ehealth:commons:1_0:core"><c:Status xmlns=""><Code>200</Code><Message>ok</Message></c:Status>` +
		`<GivenSearchCriteria><Identifier><Type>SSIN</Type><Value>93051822361</Value></Identifier></GivenSearchCriteria><ETK>` + base64.StdEncoding.EncodeToString(der) + `</ETK></GetEtkResponse>`))
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

func FuzzParseWriteAnswer(f *testing.F) {
	f.Add([]byte(`<r:Ack xmlns:r="urn:x"><Status><Code>200</Code><Message>ok</Message></Status></r:Ack>`))
	f.Add([]byte(`<r:Ack xmlns:r="urn:x"><Status><Code>400</Code><Message>no</Message></Status></r:Ack>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		el, ok := fuzzBody(data)
		if !ok {
			return
		}
		_, _ = parseWriteAnswer(el, "s", "k")
	})
}
