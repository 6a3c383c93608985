package bcp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// RouterConfig says how the endpoints of a service are chosen. Every zero
// field takes the default given in its comment (see DefaultRouterConfig).
type RouterConfig struct {
	// HoldDown is how long an endpoint that has recovered (its breaker closed
	// after being open, or the list made it ACTIVE again) only gets probe
	// calls, one at a time every HoldDownProbeInterval, before it becomes the
	// first choice again; a failed probe restarts it. It stops a flapping
	// default from bouncing traffic. (When no other endpoint can answer, an
	// endpoint in hold-down is used anyway.) 0 = 30 s; negative = no hold-down.
	HoldDown time.Duration
	// HoldDownProbeInterval paces the probes sent to an endpoint in hold-down.
	// 0 = 5 s.
	HoldDownProbeInterval time.Duration
	// PanicProbeInterval paces the probe let through when every endpoint of a
	// service is open (rather than failing without trying, as Envoy does in
	// panic mode): at most one per interval per service. 0 = 1 s.
	PanicProbeInterval time.Duration
	// MaxRetryAfter caps how long a Retry-After holds an endpoint back. 0 = 5 min.
	MaxRetryAfter time.Duration
	// Labels sets an endpoint's Site and Provider by URL where the service
	// list gives none; events, snapshots and errors carry them.
	Labels map[string]Label
}

// Label names where an endpoint runs.
type Label struct {
	Site     string // datacenter or site, e.g. "ehealth"
	Provider string // hosting provider or network, e.g. "provider-a"
}

// DefaultRouterConfig is the configuration a zero RouterConfig stands for.
var DefaultRouterConfig = RouterConfig{
	HoldDown:              30 * time.Second,
	HoldDownProbeInterval: 5 * time.Second,
	PanicProbeInterval:    time.Second,
	MaxRetryAfter:         5 * time.Minute,
}

// Validate reports the first invalid field.
func (c RouterConfig) Validate() error {
	switch {
	case c.HoldDownProbeInterval < 0:
		return fmt.Errorf("bcp: RouterConfig.HoldDownProbeInterval %s is negative", c.HoldDownProbeInterval)
	case c.PanicProbeInterval < 0:
		return fmt.Errorf("bcp: RouterConfig.PanicProbeInterval %s is negative", c.PanicProbeInterval)
	case c.MaxRetryAfter < 0:
		return fmt.Errorf("bcp: RouterConfig.MaxRetryAfter %s is negative", c.MaxRetryAfter)
	}
	for url := range c.Labels {
		if strings.TrimSpace(url) == "" {
			return fmt.Errorf("bcp: RouterConfig.Labels has an empty URL key")
		}
	}
	return nil
}

func (c RouterConfig) withDefaults() RouterConfig {
	d := DefaultRouterConfig
	switch {
	case c.HoldDown < 0:
		d.HoldDown = 0
	case c.HoldDown > 0:
		d.HoldDown = c.HoldDown
	}
	if c.HoldDownProbeInterval > 0 {
		d.HoldDownProbeInterval = c.HoldDownProbeInterval
	}
	if c.PanicProbeInterval > 0 {
		d.PanicProbeInterval = c.PanicProbeInterval
	}
	if c.MaxRetryAfter > 0 {
		d.MaxRetryAfter = c.MaxRetryAfter
	}
	d.Labels = c.Labels
	return d
}

// endpointHealth is what the engine knows of one endpoint of one service; it
// outlives service-list updates, so a new list keeps the breakers' memory.
type endpointHealth struct {
	service string
	url     string
	br      *Breaker
	ep      atomic.Pointer[Endpoint] // latest list's view, for events

	heldUntil     atomic.Int64 // unix ns; Retry-After hold, 0 = none
	holdDownUntil atomic.Int64 // unix ns; recovering, 0 = none
	probing       atomic.Bool  // a hold-down probe is in flight
	nextProbe     atomic.Int64 // unix ns before which no hold-down probe is sent
	status        EndpointStatus
}

// serviceHealth outlives list updates too.
type serviceHealth struct {
	serving   atomic.Int64 // Order of the endpoint that answered last; -1 = none yet
	lastPanic atomic.Int64 // unix ns of the last panic probe
}

// routeEndpoint is an endpoint as the current list gives it.
type routeEndpoint struct {
	ep Endpoint
	h  *endpointHealth
}

// route is a service as the current list gives it.
type route struct {
	id, name string
	policy   resolvedPolicy
	active   []routeEndpoint // ACTIVE endpoints in Order
	all      []routeEndpoint // every endpoint in Order
	sh       *serviceHealth
}

// routeTable is immutable once published.
type routeTable struct {
	byName map[string]*route
	list   []*route
}

func (r *route) endpointByOrder(order int64) (Endpoint, bool) {
	for _, re := range r.all {
		if int64(re.ep.Order) == order {
			return re.ep, true
		}
	}
	return Endpoint{}, false
}

func sortEndpoints(eps []Endpoint) []Endpoint {
	out := slices.Clone(eps)
	slices.SortStableFunc(out, func(a, b Endpoint) int { return cmp.Compare(a.Order, b.Order) })
	return out
}
