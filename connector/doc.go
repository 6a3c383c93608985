// Package connector is the client a pharmacy or GP software package imports to call the
// eHealth platform: it composes the service list and circuit breakers (bcp), the STS token
// (sts), signed SOAP (soap) and the encrypted local store (cache) behind typed priority
// functions that keep answering, and say so, when the platform is down.
//
// The smallest use:
//
//	c, err := connector.New(connector.Config{
//		Environment:      connector.Production,
//		ServiceListRoots: listCA, STSRoots: stsCA,
//		Credentials:      connector.Credentials{PKCS12File: "pharmacy.p12", Password: pw},
//		Identity:         connector.Identity{NIHII: "12345678", SSIN: holderSSIN},
//		CacheDir:         dir, CacheKeys: [][]byte{key},
//	})
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: patient})
//	if res.Source == connector.SourceCache { /* show "emergency mode", res.AsOf */ }
//
// A call travels: the service's mode (fallback answers from the store without a network
// attempt), the token, the signed envelope, the endpoints of the service list in order with
// a breaker each, then a live answer is stored, or, when every endpoint failed, the stored
// answer is served marked Source=SourceCache, Degraded=true. Writes (SendMessage for an
// eHealthBox message, Submit for any write operation of the service list) queue in the
// outbox during an outage and are replayed exactly once. Modes (normal, failed over,
// fallback, recovering) come from the breakers, the service list, the status feed and the
// operator; Subscribe publishes every change.
//
// The service list comes from the network (verified against ServiceListRoots), else from the
// last good list stored in CacheDir, else from Config.ServiceListBuiltin, a list the vendor
// compiles into the program (for example with go:embed), so that a first start during an
// outage still knows where to send calls:
//
//	//go:embed servicelist.xml
//	var builtinList []byte
//	cfg.ServiceListBuiltin = builtinList
//
// What goes on the wire is what the platform's schemas define (docs/wire.md names them, the
// official integrations followed and every choice they leave open); an answer the schema
// does not allow is a *ResponseError naming the element, never stored.
//
// Personal data (SSINs, answers) is never logged at info level or above and is encrypted
// at rest.
package connector
