// Package platformtest is a local, fault-injectable stand-in for the central
// eHealth platform, in the spirit of net/http/httptest: several sites on
// 127.0.0.1 over HTTPS with their own CA, serving the STS, insurability
// (v2 and GenericInsurability), the ETK depot, the eHealthBox (publication
// 3.0: the write, idempotent on PublicationId), the signed service list and
// the status feed, and checking every signature as the real platform does.
//
// It speaks the platform's wire format: every request's payload is
// validated against the platform's own XML Schema (embedded from
// testdata/xsd, see its README for the source of each file) by a compact
// Go validator whose verdicts this package's tests compare with xmllint's on
// thousands of mutated messages; a request that does not validate gets the
// platform's SOA-03006 "XSD compliance failure" fault. Every answer is
// checked against its schema before it is sent. Validate and
// ValidateElement expose the validator; InsurabilityRequest and its
// siblings build schema-valid requests for tests.
//
// The default service list has the production shape: the MyCareNet
// services list their eHealth endpoint ACTIVE and their BCP endpoint
// INACTIVE, and MoveService publishes a newer signed list that activates
// the BCP endpoint, as the platform does (OutageScenario uses it).
// Config.ActiveBCP lists both ACTIVE instead, for tests of a client's own
// failover between endpoints. Faults (refused connections, hangs, slow
// drips, HTTP errors, SOAP faults, malformed or huge answers, bad or expired
// tokens, clock skew) can be switched per site and per service at any time,
// so clients can prove their continuity handling against a real server.
//
// The smallest use:
//
//	p, err := platformtest.Start(platformtest.Config{})
//	if err != nil { ... }
//	defer p.Close()
//	id, _ := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
//	// point the client at p.ServiceListBaseURL(), trusting p.CACertPool(),
//	// with id's key and certificate; then, for example:
//	p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
//
// Every method of Platform and Site is safe for concurrent use.
package platformtest
