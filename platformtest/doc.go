// Package platformtest is a local, fault-injectable stand-in for the central
// eHealth platform, in the spirit of net/http/httptest: several sites on
// 127.0.0.1 over HTTPS with their own CA, serving the STS, insurability, the
// ETK depot, an idempotent write service, the signed service list and the
// status feed in the shapes of the platform, and checking every signature
// as the real platform does. Faults (refused connections, hangs, slow
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
