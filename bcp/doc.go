// Package bcp keeps calls to the eHealth platform going when part of it is
// down: it routes each call of a service over the endpoints of the platform's
// signed BCP service list, with a circuit breaker per endpoint, failover in
// the list's Order, failback after a hold-down, retries within a budget and
// optional hedging. It knows nothing of SOAP, tokens or storage.
//
// The smallest use: build an Engine, give it the service list (a Loader keeps
// it current), and make every call through Do:
//
//	e, err := bcp.New(bcp.Config{ServiceList: list})
//	...
//	err = e.Do(ctx, "insurability:v2", func(ctx context.Context, ep bcp.Endpoint) error {
//		return post(ctx, ep.URL, request) // a transport error, *bcp.StatusError or SOAP fault moves on
//	})
//	if errors.Is(err, bcp.ErrUnavailable) { /* every endpoint failed: answer from the cache */ }
//
// What counts as an endpoint failure follows docs/switching.md (see
// DefaultClassifier); an error that is not one (a business fault, our own
// bad request, the caller's cancellation) goes back to the caller as it is
// and does not move the breaker.
//
// The routing source is the platform's signed service list: ParseServiceList
// reads it (v1 and v2), a Loader keeps it current (BaseURL.sha2 then .xml,
// verified by an injected func, persisted by a ListStore, builtin fallback)
// and hands each new list to Engine.SetServiceList through OnChange:
//
//	unsubscribe := loader.OnChange(engine.SetServiceList)
//
// A Poller reads the status page's JSON feed.
package bcp
