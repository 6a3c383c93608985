package soap_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

func ExampleParse() {
	resp := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
  <soapenv:Body><GetEtkResponse xmlns="urn:be:fgov:ehealth:etkdepot:1_0:protocol"/></soapenv:Body>
</soapenv:Envelope>`
	doc, err := soap.Parse(strings.NewReader(resp), soap.Limits{}) // 10 MiB, depth 64, 100 000 elements
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := soap.BodyContent(doc)
	fmt.Println(body.Tag, body.NamespaceURI())

	_, err = soap.Parse(strings.NewReader(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`), soap.Limits{})
	fmt.Println(errors.Is(err, soap.ErrDoctype))
	_, err = soap.Parse(strings.NewReader(resp), soap.Limits{MaxDepth: 2})
	var limit *soap.LimitError
	fmt.Println(errors.As(err, &limit), limit.Limit)
	// Output:
	// GetEtkResponse urn:be:fgov:ehealth:etkdepot:1_0:protocol
	// true
	// true depth
}

func ExampleReadResponse() {
	resp := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
  <soapenv:Fault>
    <faultcode>soapenv:Server</faultcode>
    <faultstring>Service unavailable</faultstring>
    <detail><soa:SystemError xmlns:soa="urn:be:fgov:ehealth:errors:soa:v1"><soa:Code>SOA-02001</soa:Code></soa:SystemError></detail>
  </soapenv:Fault>
</soapenv:Body></soapenv:Envelope>`
	_, err := soap.ReadResponse(strings.NewReader(resp), soap.Limits{})
	var fault *soap.Fault
	if errors.As(err, &fault) {
		fmt.Println(fault.Code, fault.HasCode("SOA-02001"))
		fmt.Println(err)
	}
	// Output:
	// soapenv:Server true
	// soap fault soapenv:Server [SOA-02001] (faultstring withheld)
}

func ExampleNewFaultEnvelope() {
	doc := soap.NewFaultEnvelope(&soap.Fault{Code: "soapenv:Client", String: "not authenticated", Codes: []string{"SOA-01001"}})
	b, _ := soap.Marshal(doc)
	fmt.Println(string(b))
	// Output:
	// <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>not authenticated</faultstring><detail><soa:SystemError xmlns:soa="urn:be:fgov:ehealth:errors:soa:v1"><soa:Code>SOA-01001</soa:Code><soa:Message>not authenticated</soa:Message></soa:SystemError></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>
}

func ExampleSigner_Sign() {
	p, _ := examplePKIs() // key and certificate of the pharmacy, issued by a test CA
	signer, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert,
		Now: func() time.Time { return time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) }})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := etree.NewElement("GetEtkRequest")
	req.CreateAttr("xmlns", "urn:be:fgov:ehealth:etkdepot:1_0:protocol")
	msg, err := signer.Sign(soap.NewEnvelope(req))
	if err != nil {
		fmt.Println(err)
		return
	}

	// What is in the security header, and what the signature covers.
	doc, _ := soap.Parse(strings.NewReader(string(msg)), soap.Limits{})
	for _, el := range soap.HeaderOf(doc).FindElement("wsse:Security").ChildElements() {
		fmt.Println(el.FullTag())
	}
	fmt.Println(doc.FindElement("//wsu:Created").Text(), doc.FindElement("//wsu:Expires").Text())
	for _, ref := range doc.FindElements("//ds:Reference") {
		target := doc.FindElement(fmt.Sprintf("//*[@wsu:Id='%s']", ref.SelectAttrValue("URI", "")[1:]))
		fmt.Println("signed:", target.FullTag())
	}
	// Output:
	// wsu:Timestamp
	// wsse:BinarySecurityToken
	// ds:Signature
	// 2026-03-02T09:30:00.000Z 2026-03-02T09:31:00.000Z
	// signed: soapenv:Body
	// signed: wsu:Timestamp
}

func ExampleVerifier_Verify() {
	p, _ := examplePKIs()
	at := func() time.Time { return time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) }
	signer, _ := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: at})
	msg, _ := signer.Sign(soap.NewEnvelope(etree.NewElement("Ping")))

	// The receiving side trusts the CA that issued the sender's certificate.
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: p.roots, Now: at})
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := v.Verify(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Body.Tag, got.Certificate.Subject.CommonName, got.Expires.Sub(got.Created))

	tampered := strings.Replace(string(msg), "<Ping/>", "<Ping>pong</Ping>", 1)
	_, err = v.Verify([]byte(tampered))
	fmt.Println(errors.Is(err, soap.ErrDigest))
	// Output:
	// Ping ehgate test pharmacy 1m0s
	// true
}

func ExampleSignEnveloped() {
	p, _ := examplePKIs()
	doc := etree.NewDocument()
	list := doc.CreateElement("ServiceList")
	list.CreateAttr("xmlns", "urn:be:fgov:ehealth:bcp:protocol:v1")
	list.CreateAttr("Id", "_list")
	list.CreateElement("Service").CreateAttr("Name", "INSURABILITY V2")

	err := soap.SignEnveloped(list, p.key, soap.EnvelopedOptions{
		IDAttr:       "Id",
		Certificates: []*x509.Certificate{p.cert},
		XAdES:        true,
		Now:          func() time.Time { return time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ref := range list.FindElements(".//ds:Reference") {
		fmt.Println(ref.SelectAttrValue("URI", "")[:6], ref.SelectAttrValue("Type", "(the list)"))
	}
	signer, err := soap.VerifyEnveloped(list, p.roots, soap.VerifyEnvelopedOptions{IDAttr: "Id",
		Now: func() time.Time { return time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC) }})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signed by", signer.Subject.CommonName)
	// Output:
	// #_list (the list)
	// #xmlds http://uri.etsi.org/01903#SignedProperties
	// signed by ehgate test pharmacy
}
