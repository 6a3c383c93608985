package platformtest

import (
	"maps"
	"time"
)

// Outcome classifies how the platform answered a request.
type Outcome string

// Outcomes counted per site and service.
const (
	// OutcomeOK: a successful answer.
	OutcomeOK Outcome = "ok"
	// OutcomeBusiness: a business answer that is not a success (unknown
	// patient, refused token request, rejected write, unknown ETK).
	OutcomeBusiness Outcome = "business"
	// OutcomeRejected: refused for security (SOAP fault SOA-01001/SOA-01002).
	OutcomeRejected Outcome = "rejected"
	// OutcomeBadRequest: a request the platform could not understand.
	OutcomeBadRequest Outcome = "bad-request"
	// OutcomeInjected: an injected fault answered (or dropped) the request.
	OutcomeInjected Outcome = "injected"
	// OutcomeDuplicate: a write whose idempotency key was already accepted.
	OutcomeDuplicate Outcome = "duplicate"
)

// CounterKey identifies a counter: requests to Service on Site that ended
// with Outcome.
type CounterKey struct {
	Site    string
	Service string // short name, e.g. ServiceInsurability
	Outcome Outcome
}

func (p *Platform) count(site, service string, o Outcome) {
	p.cntMu.Lock()
	p.counters[CounterKey{site, service, o}]++
	p.cntMu.Unlock()
}

// Counters returns a copy of the request counters.
func (p *Platform) Counters() map[CounterKey]int {
	p.cntMu.Lock()
	defer p.cntMu.Unlock()
	return maps.Clone(p.counters)
}

// Count returns the number of requests to service on site that ended with
// outcome (site "" = every site).
func (p *Platform) Count(site, service string, o Outcome) int {
	if c, err := CanonicalService(service); err == nil {
		service = c
	}
	p.cntMu.Lock()
	defer p.cntMu.Unlock()
	n := 0
	for k, v := range p.counters {
		if (site == "" || k.Site == site) && k.Service == service && k.Outcome == o {
			n += v
		}
	}
	return n
}

// IssuedToken is an assertion the STS issued.
type IssuedToken struct {
	AssertionID  string
	Site         string
	Subject      string // the identity's name
	NotBefore    time.Time
	NotOnOrAfter time.Time
}

// TokensIssued returns how many assertions the STS has issued.
func (p *Platform) TokensIssued() int {
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	return len(p.tokens)
}

// Tokens returns the assertions the STS has issued, oldest first.
func (p *Platform) Tokens() []IssuedToken {
	p.tokMu.Lock()
	defer p.tokMu.Unlock()
	return append([]IssuedToken(nil), p.tokens...)
}
