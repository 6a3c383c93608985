// Package metrics exports an ehgate client's work and state as Prometheus metrics: a
// prometheus.Collector the vendor registers on its own registry. It lives apart from the
// connector so that a vendor who does not want Prometheus does not link it.
//
//	m := metrics.New()
//	c, err := connector.New(cfg, connector.WithObserver(m))
//	...
//	m.Attach(c) // state read from c.Status() at each scrape
//	registry.MustRegister(m)
//	http.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
//
// Counters and histograms are fed as calls run (the Collector is the client's
// connector.Observer); gauges (modes, breakers, token, outbox, store, service list, status
// feed, retry budget) are read from the attached client's Status at scrape time. Label
// values are bounded: operations, short service names, outcomes and modes are fixed sets,
// endpoints are the service list's URLs (at most MaxEndpoints distinct values, then
// "other"). No label or value holds personal data.
package metrics

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/connector"
)

// MaxEndpoints bounds the distinct values of the endpoint label; later endpoints are
// counted as "other".
const MaxEndpoints = 64

const namespace = "ehgate"

// Collector is the Prometheus collector and the connector.Observer of one client (or of
// several clients sharing it: counters then add up, gauges come from the attached one).
// Safe for concurrent use.
type Collector struct {
	client atomic.Pointer[connector.Client]

	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	attempts  *prometheus.HistogramVec
	steps     *prometheus.HistogramVec
	storeRead *prometheus.CounterVec
	degraded  *prometheus.CounterVec
	replayed  *prometheus.CounterVec
	failovers *prometheus.CounterVec
	failbacks *prometheus.CounterVec
	modes     *prometheus.CounterVec
	breakers  *prometheus.CounterVec
	drills    prometheus.Counter

	byCall  *table[callKey, callSeries]
	bySteps *table[stepKey, callSeries]
	epsMu   sync.RWMutex
	eps     map[string]struct{}

	desc descs
}

type callKey struct {
	operation, service, endpoint string
	outcome                      connector.Outcome
	degraded                     bool
	store                        connector.StoreRead
}

// callSeries are the series one kind of call or step feeds, resolved once (curried): the
// hot path neither hashes label values nor allocates.
type callSeries struct {
	count   prometheus.Counter // nil for steps other than store reads
	latency prometheus.Observer
	// calls only; nil when the kind of call does not feed them
	degraded     prometheus.Counter
	replayed     prometheus.Counter
	storeCount   prometheus.Counter  // a store read reported in CallEnd
	storeLatency prometheus.Observer // its duration
}

// New returns a collector; give it to connector.New with connector.WithObserver, then
// Attach the client.
func New() *Collector {
	m := &Collector{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "calls_total",
			Help: "Calls by operation, service, endpoint that answered (none = no endpoint) and outcome (live, store, queued, not_cached, business, error)."},
			[]string{"operation", "service", "endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "call_duration_seconds",
			Help:    "Duration of calls as the caller saw it, by operation, service and outcome.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"operation", "service", "outcome"}),
		attempts: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "endpoint_attempt_duration_seconds",
			Help:    "Duration of each attempt on an endpoint, by service, endpoint and result (ok, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"service", "endpoint", "result"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "step_duration_seconds",
			Help:    "Duration of the steps of calls other than endpoint attempts (token, sign, store_read, store_write), by service and result.",
			Buckets: []float64{.00001, .0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5}},
			[]string{"step", "service", "result"}),
		storeRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "store_reads_total",
			Help: "Reads of the local store by service and result (hit, miss, expired, error)."},
			[]string{"service", "result"}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "store_degraded_answers_total",
			Help: "Answers served from the local store because the platform could not answer, by service."},
			[]string{"service"}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "outbox_replayed_total",
			Help: "Queued writes the outbox replay tried, by result (delivered, dead_letter, failed)."},
			[]string{"result"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "failovers_total",
			Help: "Moves of a service to a fallback endpoint of the service list."}, []string{"service"}),
		failbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "failbacks_total",
			Help: "Returns of a service to its default endpoint."}, []string{"service"}),
		modes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "mode_changes_total",
			Help: "Mode changes of a service, by the mode entered."}, []string{"service", "mode"}),
		breakers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "breaker_transitions_total",
			Help: "Breaker state changes of an endpoint, by the state entered."}, []string{"service", "endpoint", "state"}),
		drills: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "drill_events_total",
			Help: "Drill starts and ends."}),
		byCall:  newTable[callKey, callSeries](4096),
		bySteps: newTable[stepKey, callSeries](4096),
		eps:     map[string]struct{}{},
		desc:    newDescs(),
	}
	return m
}

// Attach makes scrapes read the state of c (Status). Until then only the counters and
// histograms fed by the observer are exported.
func (m *Collector) Attach(c *connector.Client) { m.client.Store(c) }

// endpoint bounds the endpoint label.
func (m *Collector) endpoint(url string) string {
	if url == "" {
		return "none"
	}
	m.epsMu.RLock()
	_, ok := m.eps[url]
	n := len(m.eps)
	m.epsMu.RUnlock()
	if ok {
		return url
	}
	if n >= MaxEndpoints {
		return "other"
	}
	m.epsMu.Lock()
	defer m.epsMu.Unlock()
	if _, ok := m.eps[url]; !ok {
		if len(m.eps) >= MaxEndpoints {
			return "other"
		}
		m.eps[url] = struct{}{}
	}
	return url
}

// series returns the series of one kind of call, resolved once.
func (m *Collector) series(k callKey) callSeries {
	if s, ok := m.byCall.get(k); ok {
		return s
	}
	ep := m.endpoint(k.endpoint)
	s := callSeries{
		count:   m.calls.WithLabelValues(k.operation, k.service, ep, string(k.outcome)),
		latency: m.latency.WithLabelValues(k.operation, k.service, string(k.outcome)),
	}
	if k.degraded && k.outcome == connector.OutcomeStore {
		s.degraded = m.degraded.WithLabelValues(k.service)
	}
	if k.operation == connector.OperationReplay {
		switch k.outcome {
		case connector.OutcomeLive:
			s.replayed = m.replayed.WithLabelValues("delivered")
		case connector.OutcomeBusiness:
			s.replayed = m.replayed.WithLabelValues("dead_letter")
		default:
			s.replayed = m.replayed.WithLabelValues("failed")
		}
	}
	if k.store != connector.StoreReadNone {
		r := m.stepSeries(stepKey{kind: connector.StepStoreRead, service: k.service, result: k.store.String()})
		s.storeCount, s.storeLatency = r.count, r.latency
	}
	m.byCall.add(k, s)
	return s
}

// CallStarted implements connector.Observer.
func (m *Collector) CallStarted(ctx context.Context, _ connector.CallInfo) context.Context {
	return ctx
}

// CallEnded implements connector.Observer. A store read reported with the call (a service in
// fallback mode) counts as a store read step lasting the call.
func (m *Collector) CallEnded(_ context.Context, call connector.CallInfo, end connector.CallEnd) {
	s := m.series(callKey{operation: call.Operation, service: call.Service, endpoint: end.Endpoint,
		outcome: end.Outcome, degraded: end.Degraded, store: end.StoreRead})
	sec := end.Duration.Seconds()
	s.count.Inc()
	s.latency.Observe(sec)
	if s.degraded != nil {
		s.degraded.Inc()
	}
	if s.replayed != nil {
		s.replayed.Inc()
	}
	if s.storeCount != nil {
		s.storeCount.Inc()
		s.storeLatency.Observe(sec)
	}
}

// StepStarted implements connector.Observer.
func (m *Collector) StepStarted(ctx context.Context, _ connector.StepInfo) context.Context {
	return ctx
}

// StepEnded implements connector.Observer.
func (m *Collector) StepEnded(_ context.Context, step connector.StepInfo, err error, d time.Duration) {
	k := stepKey{kind: step.Kind, service: step.Service, result: "ok"}
	if err != nil {
		k.result = "error"
	}
	switch step.Kind {
	case connector.StepAttempt:
		k.endpoint = step.Endpoint
	case connector.StepStoreRead:
		switch {
		case err == nil:
			k.result = "hit"
		case errors.Is(err, cache.ErrExpired):
			k.result = "expired"
		case errors.Is(err, cache.ErrNotFound):
			k.result = "miss"
		}
	}
	s := m.stepSeries(k)
	s.latency.Observe(d.Seconds())
	if s.count != nil {
		s.count.Inc()
	}
}

// stepKey names the series of one kind of step.
type stepKey struct {
	kind                      connector.StepKind
	service, endpoint, result string
}

// stepSeries returns the histogram (and, for store reads, the counter) of a step key,
// resolved once.
func (m *Collector) stepSeries(k stepKey) callSeries {
	if s, ok := m.bySteps.get(k); ok {
		return s
	}
	var s callSeries
	switch k.kind {
	case connector.StepAttempt:
		s.latency = m.attempts.WithLabelValues(k.service, m.endpoint(k.endpoint), k.result)
	case connector.StepStoreRead:
		s.count = m.storeRead.WithLabelValues(k.service, k.result)
		result := "ok"
		if k.result == "error" {
			result = "error"
		}
		s.latency = m.steps.WithLabelValues(k.kind.String(), k.service, result)
	default:
		s.latency = m.steps.WithLabelValues(k.kind.String(), k.service, k.result)
	}
	m.bySteps.add(k, s)
	return s
}

// Event implements connector.Observer.
func (m *Collector) Event(ev connector.Event) {
	switch ev.Kind {
	case connector.EventFailedOver:
		m.failovers.WithLabelValues(ev.Service).Inc()
	case connector.EventFailedBack:
		m.failbacks.WithLabelValues(ev.Service).Inc()
	case connector.EventModeChanged:
		m.modes.WithLabelValues(ev.Service, ev.Mode.String()).Inc()
	case connector.EventBreaker:
		to := ev.Cause
		if i := lastArrow(to); i >= 0 {
			to = to[i:]
		}
		m.breakers.WithLabelValues(ev.Service, m.endpoint(ev.Endpoint), to).Inc()
	case connector.EventDrill:
		m.drills.Inc()
	}
}

// lastArrow returns the index after the last "→ " of a breaker event's cause ("from → to").
func lastArrow(s string) int {
	const arrow = "→ "
	for i := len(s) - len(arrow); i >= 0; i-- {
		if s[i:i+len(arrow)] == arrow {
			return i + len(arrow)
		}
	}
	return -1
}

var _ connector.Observer = (*Collector)(nil)
