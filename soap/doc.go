// Package soap builds, parses and secures the SOAP 1.1 messages of the
// eHealth platform: envelopes and faults, bounded parsing that refuses DTDs,
// and WS-Security and enveloped XML signatures (exclusive C14N, SHA-256,
// RSA-SHA256) that resist signature wrapping.
//
// The smallest use signs a request and reads the answer:
//
//	signer, _ := soap.NewSigner(soap.SignerConfig{Key: key, Certificate: cert})
//	msg, _ := signer.Sign(soap.NewEnvelope(request))
//	// … POST msg …
//	body, err := soap.ReadResponse(resp.Body, soap.Limits{}) // a SOAP fault is a *soap.Fault error
//
// Canonicalisation is goxmldsig's; trees are beevik/etree's.
package soap
