// Package soap builds and parses the SOAP 1.1 envelopes and faults of the
// eHealth platform, refusing DTDs and bounding size, depth and element count.
// It signs and verifies them with WS-Security and enveloped XML signatures
// (exclusive C14N, SHA-256, RSA-SHA256) and rejects signature wrapping.
//
// The smallest use signs a request and reads the answer:
//
//	signer, _ := soap.NewSigner(soap.SignerConfig{Key: key, Certificate: cert})
//	msg, _ := signer.Sign(soap.NewEnvelope(request))
//	// … POST msg …
//	body, err := soap.ReadResponse(resp.Body, soap.Limits{}) // a SOAP fault is a *soap.Fault error
//
// Client is the one SOAP-over-HTTP client of ehgate (the STS exchange and the connector's
// services use it): it posts an envelope and reads the answer by one rule — redirects are
// never followed, whatever http.Client is given, and a redirect or an HTTP error whose body
// is not a SOAP fault is a *StatusError (the endpoint's failure); a SOAP fault is a *Fault;
// a 2xx that is not SOAP wraps Parse's error; the body is read within Limits and drained.
// Only detail/*/Code decides switching (Fault.Codes); every code under detail is reported
// (Fault.AllCodes).
//
// On a hot path, a caller that writes its payload in exclusive canonical form (Canonical
// proves it) signs it with Signer.AppendSigned, which writes the same message as Sign in one
// pass into the caller's buffer without building a tree, and reads the answer with
// Client.PostRaw, which checks the envelope with a lexer and hands over the Body's element as
// bytes for the caller's streaming reader (anything unusual goes through Parse as in Post).
//
// Trees are beevik/etree's; canonicalisation is goxmldsig's. Signers and
// Verifiers are safe for concurrent use.
package soap
