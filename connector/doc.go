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
// A live answer is stored without the caller waiting for the disk: the store commits live
// answers together, at most a second later (a crash loses at most that second's answers,
// which the next call fetches again live), while a write queued in the outbox is on disk
// before the call returns. An Insurability v2 call builds no XML tree: the request is
// written in its canonical form and signed as written, and the answer is read strictly from
// its bytes.
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
// New does not wait on the network: it starts from the stored or builtin list and fetches
// in the background. A call made while no list is usable waits, within its own context, for
// a fetch to end; when none is usable it fails with ErrNoServiceList carrying the list's last
// error (priority functions answer from the store).
//
// An outage is not a refusal. Every endpoint failing (transport errors, timeouts, redirects,
// HTTP error pages that are not SOAP, garbled answers, SOAP faults with a switching code) is
// an outage: the store answers, marked. A SOAP fault with any other code is the platform,
// up, saying no: it reaches the caller as a *BusinessError (ErrBusiness) carrying the
// faultstring and every code under detail, and no stored answer replaces it. No call ever
// follows a redirect, whatever http.Client the vendor gives.
//
// Cancel and deadline are not the same. A caller who cancels its context gets ctx.Err() at
// once, and nothing is recorded (no regularisation entry, no breaker move, no mode change).
// A caller's deadline means "answer within this time": the live part of the call ends
// shortly before it (a tenth of the time left, 20 ms to 500 ms, is kept for the store) and
// when the platform has not answered by then, the stored answer, marked Degraded, is
// returned before the deadline; the caller's deadline does not change the service's mode.
// Close cancels the calls in flight (they return ErrClosed) and every later call returns
// ErrClosed.
//
// What goes on the wire is what the platform's schemas define (docs/wire.md names them, the
// official integrations followed and every choice they leave open); an answer the schema
// does not allow is a *ResponseError naming the element, never stored.
//
// The service list is adopted only when its signature chains to ServiceListRoots and comes
// from the pinned signer (ServiceListSigner; by default the platform's SERVICELIST
// certificate subject), it is of the configured environment (ServiceListEnvironment;
// derived from Environment for the platform's own URL), its IssueInstant is not later than
// now plus five minutes, and it is not a second, different list of the held list's instant.
//
// Proxies: every request (service list, status feed, STS, services) goes through one
// transport, and so through one proxy policy, Config.Proxy: the environment's proxy by
// default (HTTPS_PROXY, HTTP_PROXY, NO_PROXY as net/http reads them), a fixed proxy URL, or
// Direct. With WithHTTPClient or WithTransport the vendor's transport decides.
//
// Personal data (SSINs, names, answers) is never logged at any level nor carried in error
// texts (a SOAP fault's faultstring, where the platform echoes request data, is left out of
// its Error; read the *soap.Fault or *BusinessError fields where it is safe to show), is
// redacted when a Config is printed, and is encrypted at rest.
package connector
