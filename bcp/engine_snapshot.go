package bcp

import "time"

// Snapshot is the state of every service and endpoint the engine routes.
type Snapshot struct {
	At            time.Time
	Services      []ServiceSnapshot
	Budget        BudgetSnapshot
	DroppedEvents uint64 // events dropped because a subscriber's buffer was full
}

// ServiceSnapshot is one service.
type ServiceSnapshot struct {
	ID, Name string
	// Serving is the endpoint that answered last (zero before any answer).
	Serving Endpoint
	// FailedOver says Serving is not the service's first ACTIVE endpoint
	// (the engine moved away from it: breaker, Retry-After, hold-down).
	FailedOver bool
	// ListBCPMode says the list itself marks the default (lowest Order)
	// endpoint INACTIVE, so the first ACTIVE endpoint is a fallback.
	ListBCPMode bool
	Endpoints   []EndpointSnapshot // every endpoint of the list, in Order
}

// EndpointSnapshot is one endpoint and its breaker.
type EndpointSnapshot struct {
	Endpoint
	Breaker       BreakerSnapshot
	HeldUntil     time.Time // Retry-After hold; zero when none
	HoldDownUntil time.Time // recovering, probe traffic only; zero when none
}

// Snapshot returns the state of every service and endpoint.
func (e *Engine) Snapshot() Snapshot {
	t := e.table.Load()
	now := e.clock.Now()
	s := Snapshot{At: now, Budget: e.budget.snapshot(), DroppedEvents: e.dropped.Load()}
	for _, r := range t.list {
		ss := ServiceSnapshot{ID: r.id, Name: r.name}
		if o := r.sh.serving.Load(); o >= 0 {
			ss.Serving, _ = r.endpointByOrder(o)
			ss.FailedOver = len(r.active) > 0 && ss.Serving.Order != r.active[0].ep.Order
		}
		ss.ListBCPMode = len(r.all) > 0 && r.all[0].ep.Status != StatusActive
		for _, re := range r.all {
			es := EndpointSnapshot{Endpoint: re.ep, Breaker: re.h.br.Snapshot()}
			if hu := re.h.heldUntil.Load(); hu > now.UnixNano() {
				es.HeldUntil = time.Unix(0, hu)
			}
			if hd := re.h.holdDownUntil.Load(); hd > now.UnixNano() {
				es.HoldDownUntil = time.Unix(0, hd)
			}
			ss.Endpoints = append(ss.Endpoints, es)
		}
		s.Services = append(s.Services, ss)
	}
	return s
}
