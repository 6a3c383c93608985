package bcp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ServicePolicy is how calls to one service are made. Every zero field takes
// the default given in its comment (see DefaultServicePolicy).
type ServicePolicy struct {
	// AttemptTimeout bounds one attempt on one endpoint (connect timeouts are
	// the HTTP layer's). 0 = 5 s; negative = no per-attempt timeout (the
	// caller's context alone bounds it).
	AttemptTimeout time.Duration
	// Idempotent allows retries (further passes over the endpoints after a
	// backoff) and hedging. Writes leave it false.
	Idempotent bool
	// Retries is the number of further passes of an idempotent service, each
	// attempt drawn from the retry budget. 0 = 1; negative = none.
	Retries int
	// RetryDelay is the first delay before a retry pass, grown ×2 with ±50 %
	// jitter. 0 = 100 ms.
	RetryDelay time.Duration
	// MaxRetryDelay caps the delay before a retry pass. 0 = 2 s.
	MaxRetryDelay time.Duration
	// HedgeDelay, for an idempotent service, starts the next endpoint when the
	// first has not answered after this long (if the retry budget allows); the
	// first good answer wins and the other attempt's context is cancelled.
	// 0 = no hedging.
	HedgeDelay time.Duration
}

// DefaultServicePolicy is the policy a zero ServicePolicy stands for.
var DefaultServicePolicy = ServicePolicy{
	AttemptTimeout: 5 * time.Second,
	Retries:        1,
	RetryDelay:     100 * time.Millisecond,
	MaxRetryDelay:  2 * time.Second,
}

// Validate reports the first invalid field.
func (p ServicePolicy) Validate() error {
	switch {
	case p.RetryDelay < 0:
		return fmt.Errorf("bcp: ServicePolicy.RetryDelay %s is negative", p.RetryDelay)
	case p.MaxRetryDelay < 0:
		return fmt.Errorf("bcp: ServicePolicy.MaxRetryDelay %s is negative", p.MaxRetryDelay)
	case p.HedgeDelay < 0:
		return fmt.Errorf("bcp: ServicePolicy.HedgeDelay %s is negative", p.HedgeDelay)
	case p.Retries > 10:
		return fmt.Errorf("bcp: ServicePolicy.Retries %d is above 10", p.Retries)
	}
	return nil
}

type resolvedPolicy struct {
	attemptTimeout time.Duration
	retries        int // further passes; 0 unless idempotent
	retryDelay     time.Duration
	maxRetryDelay  time.Duration
	hedgeDelay     time.Duration // 0 unless idempotent
}

func (p ServicePolicy) resolve() resolvedPolicy {
	d := DefaultServicePolicy
	r := resolvedPolicy{attemptTimeout: d.AttemptTimeout, retryDelay: d.RetryDelay, maxRetryDelay: d.MaxRetryDelay}
	switch {
	case p.AttemptTimeout < 0:
		r.attemptTimeout = 0
	case p.AttemptTimeout > 0:
		r.attemptTimeout = p.AttemptTimeout
	}
	if p.RetryDelay > 0 {
		r.retryDelay = p.RetryDelay
	}
	if p.MaxRetryDelay > 0 {
		r.maxRetryDelay = p.MaxRetryDelay
	}
	if p.Idempotent {
		switch {
		case p.Retries == 0:
			r.retries = d.Retries
		case p.Retries > 0:
			r.retries = p.Retries
		}
		r.hedgeDelay = p.HedgeDelay
	}
	return r
}

// Config is the configuration of an Engine. The zero Config is valid: every
// part takes its defaults.
type Config struct {
	// Breaker configures the breaker of every endpoint.
	Breaker BreakerConfig
	// Router configures endpoint choice, hold-down, panic probes and labels.
	Router RouterConfig
	// Budget bounds retries.
	Budget BudgetConfig
	// Default is the policy of services not in Services.
	Default ServicePolicy
	// Services holds per-service policies keyed by short name
	// ("insurability:v2"), list Name, or UDDI key.
	Services map[string]ServicePolicy
	// Classifier judges attempt errors. nil = DefaultClassifier{FaultCodes: FaultCodes}.
	Classifier Classifier
	// FaultCodes are the SOAP fault codes on which the default classifier
	// switches endpoint. nil = DefaultFaultCodes.
	FaultCodes []string
	// ServiceList is the list to start with; nil = none until SetServiceList.
	ServiceList *ServiceList
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if err := c.Breaker.Validate(); err != nil {
		return fmt.Errorf("Config.Breaker: %w", err)
	}
	if err := c.Router.Validate(); err != nil {
		return fmt.Errorf("Config.Router: %w", err)
	}
	if err := c.Budget.Validate(); err != nil {
		return fmt.Errorf("Config.Budget: %w", err)
	}
	if err := c.Default.Validate(); err != nil {
		return fmt.Errorf("Config.Default: %w", err)
	}
	for name, p := range c.Services {
		if name == "" {
			return errors.New("bcp: Config.Services has an empty service name")
		}
		if err := p.Validate(); err != nil {
			return fmt.Errorf("Config.Services[%q]: %w", name, err)
		}
	}
	for i, code := range c.FaultCodes {
		if code == "" {
			return fmt.Errorf("bcp: Config.FaultCodes[%d] is empty", i)
		}
	}
	return nil
}

// Engine runs calls to the platform's services over their endpoints: one
// breaker per endpoint, the endpoints of a service in the list's Order,
// failover on a switching failure, failback after a hold-down, retries within
// a budget, hedging. One Engine per client; safe for concurrent use.
type Engine struct {
	cfg        Config
	breakerCfg BreakerConfig
	routerCfg  RouterConfig
	classifier Classifier
	clock      Clock
	log        *zap.Logger
	budget     *retryBudget

	table  atomic.Pointer[routeTable]
	closed atomic.Bool

	mu       sync.Mutex // SetServiceList, Close
	health   map[string]*endpointHealth
	services map[string]*serviceHealth

	subMu   sync.Mutex
	subs    []chan Event
	dropped atomic.Uint64
}

// New validates cfg and returns an Engine. Options: WithClock, WithLogger.
func New(cfg Config, opts ...Option) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	e := &Engine{
		cfg:        cfg,
		breakerCfg: cfg.Breaker.withDefaults(),
		routerCfg:  cfg.Router.withDefaults(),
		classifier: cfg.Classifier,
		clock:      o.clock,
		log:        o.logger,
		budget:     newRetryBudget(cfg.Budget.withDefaults(), o.clock.Now()),
		health:     make(map[string]*endpointHealth),
		services:   make(map[string]*serviceHealth),
	}
	if e.classifier == nil {
		e.classifier = DefaultClassifier{FaultCodes: cfg.FaultCodes}
	}
	e.table.Store(&routeTable{byName: map[string]*route{}})
	if cfg.ServiceList != nil {
		e.SetServiceList(cfg.ServiceList)
	}
	return e, nil
}

func (e *Engine) now() int64 { return e.clock.Now().UnixNano() }

// SetServiceList makes l the routing source. Breakers and hold-downs of
// endpoints that stay in the list are kept; an endpoint that turns ACTIVE
// again enters the hold-down before it is the first choice again.
func (e *Engine) SetServiceList(l *ServiceList) {
	if l == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	t := &routeTable{byName: make(map[string]*route, 3*len(l.Services))}
	for _, svc := range l.Services {
		sh := e.services[svc.ID]
		if sh == nil {
			sh = &serviceHealth{}
			sh.serving.Store(-1)
			e.services[svc.ID] = sh
		}
		r := &route{id: svc.ID, name: svc.Name, sh: sh, policy: e.policyFor(svc).resolve()}
		for _, ep := range sortEndpoints(svc.Endpoints) {
			if ep.Service == "" {
				ep.Service = svc.ID
			}
			if lb, ok := e.routerCfg.Labels[ep.URL]; ok {
				if ep.Site == "" {
					ep.Site = lb.Site
				}
				if ep.Provider == "" {
					ep.Provider = lb.Provider
				}
			}
			key := svc.ID + "\x00" + ep.URL
			h := e.health[key]
			if h == nil {
				h = e.newHealth(svc.ID, ep)
				e.health[key] = h
			} else if h.status == StatusInactive && ep.Status == StatusActive && e.routerCfg.HoldDown > 0 {
				e.startHoldDown(h, now)
			}
			h.status = ep.Status
			epc := ep
			h.ep.Store(&epc)
			re := routeEndpoint{ep: ep, h: h}
			r.all = append(r.all, re)
			if ep.Status == StatusActive {
				r.active = append(r.active, re)
			}
		}
		t.list = append(t.list, r)
		for _, name := range []string{svc.ID, svc.Name, ShortServiceName(svc.ID)} {
			if _, taken := t.byName[name]; name != "" && !taken {
				t.byName[name] = r
			}
		}
	}
	e.table.Store(t)
}

func (e *Engine) policyFor(svc Service) ServicePolicy {
	for _, name := range []string{svc.ID, ShortServiceName(svc.ID), svc.Name} {
		if p, ok := e.cfg.Services[name]; ok && name != "" {
			return p
		}
	}
	return e.cfg.Default
}

func (e *Engine) newHealth(service string, ep Endpoint) *endpointHealth {
	h := &endpointHealth{service: service, url: ep.URL}
	h.br = newBreaker(e.breakerCfg, e.clock)
	h.br.onChange = func(from, to State, at time.Time) { e.breakerChanged(h, from, to, at) }
	return h
}

func (e *Engine) breakerChanged(h *endpointHealth, from, to State, at time.Time) {
	ep := *h.ep.Load()
	kind := EventBreakerClosed
	switch to {
	case StateOpen, StateForcedOpen:
		kind = EventBreakerOpened
	case StateHalfOpen:
		kind = EventBreakerHalfOpen
	}
	if to == StateClosed && from == StateHalfOpen && e.routerCfg.HoldDown > 0 {
		e.startHoldDown(h, at.UnixNano())
	}
	if to == StateForcedClosed || to == StateForcedOpen {
		h.holdDownUntil.Store(0)
	}
	e.log.Info("bcp: breaker "+to.String(),
		zap.String("service", h.service), zap.String("endpoint", ep.URL),
		zap.String("site", ep.Site), zap.Stringer("from", from), zap.Stringer("to", to))
	e.publish(Event{Kind: kind, Service: h.service, Endpoint: ep, From: from, To: to, At: at})
}

// Breaker returns the breaker of a service's endpoint, for operators: ForceOpen,
// ForceClose, Reset. service is a short name, list Name or UDDI key.
func (e *Engine) Breaker(service, url string) (*Breaker, bool) {
	r := e.table.Load().byName[service]
	if r == nil {
		return nil, false
	}
	for _, re := range r.all {
		if re.ep.URL == url {
			return re.h.br, true
		}
	}
	return nil, false
}

// Do runs one call of service: attempt is called with an endpoint (and a
// context bounded by the attempt timeout) until one succeeds, the error is
// not a reason to switch, or every endpoint has failed, in which case Do
// returns an *UnavailableError (errors.Is(err, ErrUnavailable)) naming each
// endpoint considered and why it failed or was skipped.
//
// The caller's cancellation ends the call without holding it against the
// endpoint; the caller's deadline expiring during an attempt counts as that
// endpoint's failure (it did not answer in the time there was) and ends the
// call too. Idempotent services get further passes after a jittered backoff,
// within the retry budget, when a pass actually tried an endpoint.
//
// On the healthy path Do reads no clock and does not allocate when the
// service's AttemptTimeout is disabled (with one, context.WithTimeout
// allocates). attempt may run on another goroutine when the service hedges,
// so a closure passed as attempt escapes to the heap at the call site.
func (e *Engine) Do(ctx context.Context, service string, attempt func(ctx context.Context, ep Endpoint) error) error {
	if e.closed.Load() {
		return ErrClosed
	}
	r := e.table.Load().byName[service]
	if r == nil {
		return fmt.Errorf("bcp: service %q: %w", service, ErrUnknownService)
	}
	if len(r.active) == 0 {
		return &UnavailableError{Service: r.id, Attempts: []AttemptError{{Endpoint: Endpoint{Service: r.id}, Err: ErrNoActiveEndpoint}}}
	}
	e.budget.deposit()
	var atts []AttemptError // nil on the healthy path: allocated only when something fails
	var bo *backoff.ExponentialBackOff
	for pass := 0; pass <= r.policy.retries; pass++ {
		if pass > 0 {
			if ctx.Err() != nil {
				break
			}
			if bo == nil {
				bo = backoff.NewExponentialBackOff(
					backoff.WithInitialInterval(r.policy.retryDelay),
					backoff.WithMaxInterval(r.policy.maxRetryDelay),
					backoff.WithMultiplier(2),
					backoff.WithRandomizationFactor(0.5),
					backoff.WithMaxElapsedTime(0),
					backoff.WithClockProvider(clockAdapter{e.clock}))
			}
			if err := e.sleep(ctx, bo.NextBackOff()); err != nil {
				break
			}
		}
		var err error
		var done bool
		from := len(atts)
		if r.policy.hedgeDelay > 0 {
			err, done = e.hedgedPass(ctx, r, pass, attempt, &atts)
		} else {
			err, done = e.pass(ctx, r, pass, attempt, &atts)
		}
		if done {
			e.debugCall(r, err, len(atts))
			return err
		}
		if !attemptedSince(atts, from) {
			break // nothing could be tried (all open, held or out of budget): a retry would not do better
		}
	}
	err := &UnavailableError{Service: r.id, Attempts: atts}
	e.debugCall(r, err, len(atts))
	return err
}

// attemptedSince reports whether an endpoint was actually asked (and failed)
// among atts[from:], rather than skipped.
func attemptedSince(atts []AttemptError, from int) bool {
	for _, a := range atts[from:] {
		if a.Err != ErrOpen && a.Err != ErrHeld && a.Err != ErrBudget {
			return true
		}
	}
	return false
}

func (e *Engine) debugCall(r *route, err error, attempts int) {
	if ce := e.log.Check(zapcore.DebugLevel, "bcp: call"); ce != nil {
		ce.Write(zap.String("service", r.id), zap.Int("failed_attempts", attempts), zap.Error(err))
	}
}

// sleep waits d on the engine's clock or until ctx is done.
func (e *Engine) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	ch := make(chan struct{})
	t := e.clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}

// pick is an endpoint chosen for an attempt.
type pick struct {
	i      int
	permit Permit
	probe  bool // hold-down probe: release h.probing afterwards
}

// next returns the first endpoint from index start that may be tried now.
// deferred collects endpoints in hold-down skipped because their probe was
// taken; with relaxed those are the only ones considered and hold-down is
// ignored. Skips are recorded in atts.
func (e *Engine) next(r *route, start int, pass int, now *int64, relaxed bool, deferred *uint64, atts *[]AttemptError) (pick, bool) {
	for i := start; i < len(r.active); i++ {
		re := &r.active[i]
		h := re.h
		if relaxed && (i >= 64 || *deferred&(1<<i) == 0) {
			continue
		}
		if hu := h.heldUntil.Load(); hu != 0 {
			if *now == 0 {
				*now = e.now()
			}
			if *now < hu {
				*atts = append(*atts, AttemptError{Endpoint: re.ep, Err: ErrHeld})
				continue
			}
			h.heldUntil.CompareAndSwap(hu, 0)
		}
		probe := false
		if hd := h.holdDownUntil.Load(); hd != 0 && !relaxed {
			if *now == 0 {
				*now = e.now()
			}
			if *now < hd {
				np := h.nextProbe.Load()
				if *now < np || !h.nextProbe.CompareAndSwap(np, *now+int64(e.routerCfg.HoldDownProbeInterval)) ||
					!h.probing.CompareAndSwap(false, true) {
					if i < 64 {
						*deferred |= 1 << i
					}
					continue
				}
				probe = true
			} else {
				h.holdDownUntil.CompareAndSwap(hd, 0)
			}
		}
		p, err := h.br.Allow()
		if err != nil {
			if probe {
				h.probing.Store(false)
			}
			*atts = append(*atts, AttemptError{Endpoint: re.ep, Err: ErrOpen})
			continue
		}
		if pass > 0 {
			if *now == 0 {
				*now = e.now()
			}
			if !e.budget.withdraw(*now) {
				h.br.Done(p, Ignore)
				if probe {
					h.probing.Store(false)
				}
				*atts = append(*atts, AttemptError{Endpoint: re.ep, Err: ErrBudget})
				return pick{}, false
			}
		}
		return pick{i: i, permit: p, probe: probe}, true
	}
	return pick{}, false
}

// panicPick lets one probe through to the first open endpoint when no
// endpoint of the service could be tried, at most once per PanicProbeInterval.
func (e *Engine) panicPick(r *route, now *int64) (pick, bool) {
	if *now == 0 {
		*now = e.now()
	}
	last := r.sh.lastPanic.Load()
	if last != 0 && *now-last < int64(e.routerCfg.PanicProbeInterval) {
		return pick{}, false
	}
	for i := range r.active {
		h := r.active[i].h
		if hu := h.heldUntil.Load(); hu != 0 && *now < hu {
			continue
		}
		if st := h.br.State(); st != StateOpen && st != StateHalfOpen {
			continue
		}
		if !r.sh.lastPanic.CompareAndSwap(last, *now) {
			return pick{}, false
		}
		if p, ok := h.br.probeNow(); ok {
			e.log.Warn("bcp: every endpoint open, probing one",
				zap.String("service", r.id), zap.String("endpoint", r.active[i].ep.URL))
			return pick{i: i, permit: p}, true
		}
		return pick{}, false
	}
	return pick{}, false
}

// pass tries the service's endpoints once each, in Order. done reports that
// the call is over with err (nil on success).
func (e *Engine) pass(ctx context.Context, r *route, pass int, attempt func(context.Context, Endpoint) error, atts *[]AttemptError) (err error, done bool) {
	var now int64
	var deferred uint64
	tried := false
	for _, relaxed := range [2]bool{false, true} {
		if relaxed && (deferred == 0 || tried && ctx.Err() != nil) {
			break
		}
		start := 0
		for {
			pk, ok := e.next(r, start, pass, &now, relaxed, &deferred, atts)
			if !ok {
				break
			}
			start = pk.i + 1
			tried = true
			if err, done := e.run(ctx, r, pk, attempt, atts); done {
				return err, true
			}
			if ctx.Err() != nil {
				return nil, false
			}
		}
	}
	if !tried && pass == 0 {
		if pk, ok := e.panicPick(r, &now); ok {
			return e.run(ctx, r, pk, attempt, atts)
		}
	}
	return nil, false
}

// run makes one attempt and books its outcome.
func (e *Engine) run(ctx context.Context, r *route, pk pick, attempt func(context.Context, Endpoint) error, atts *[]AttemptError) (error, bool) {
	re := &r.active[pk.i]
	err := e.invoke(ctx, r.policy.attemptTimeout, re.ep, attempt)
	o := e.outcome(ctx, err)
	e.book(r, pk, o, err)
	switch o {
	case Failure:
		*atts = append(*atts, AttemptError{Endpoint: re.ep, Err: err})
		return nil, false
	default:
		return err, true
	}
}

// book records an attempt's outcome on the breaker and the router.
func (e *Engine) book(r *route, pk pick, o Outcome, err error) {
	re := &r.active[pk.i]
	h := re.h
	h.br.Done(pk.permit, o)
	switch o {
	case Success:
		if !pk.probe && !pk.permit.IsProbe() {
			e.served(r, re.ep)
		}
	case Failure:
		if ra := retryAfterOf(err); ra > 0 {
			h.heldUntil.Store(e.now() + int64(min(ra, e.routerCfg.MaxRetryAfter)))
		}
		if pk.probe && e.routerCfg.HoldDown > 0 {
			e.startHoldDown(h, e.now()) // a flapping endpoint starts its hold-down again
		}
	}
	if pk.probe {
		h.probing.Store(false)
	}
}

// startHoldDown makes h a recovering endpoint: for HoldDown from now it only
// gets a probe every HoldDownProbeInterval, the first one interval from now.
func (e *Engine) startHoldDown(h *endpointHealth, now int64) {
	h.nextProbe.Store(now + int64(e.routerCfg.HoldDownProbeInterval))
	h.holdDownUntil.Store(now + int64(e.routerCfg.HoldDown))
}

// served notes that ep answered; a change of endpoint is a failover or a failback.
func (e *Engine) served(r *route, ep Endpoint) {
	order := int64(ep.Order)
	old := r.sh.serving.Load()
	if old == order || !r.sh.serving.CompareAndSwap(old, order) {
		return
	}
	if old < 0 && ep.Order == r.active[0].ep.Order {
		return // first answer, from the first choice
	}
	prev, _ := r.endpointByOrder(old)
	kind := EventFailedOver
	msg := "bcp: service failed over"
	if old >= 0 && order < old {
		kind, msg = EventFailedBack, "bcp: service failed back"
	}
	e.log.Warn(msg, zap.String("service", r.id), zap.String("from", prev.URL), zap.String("to", ep.URL),
		zap.String("site", ep.Site), zap.String("provider", ep.Provider))
	e.publish(Event{Kind: kind, Service: r.id, Endpoint: ep, Previous: prev, At: e.clock.Now()})
}

// attemptTimeoutError is an attempt cut by the per-attempt timeout.
type attemptTimeoutError struct {
	after time.Duration
	err   error
}

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("bcp: attempt timed out after %s: %v", e.after, e.err)
}
func (e *attemptTimeoutError) Unwrap() error { return e.err }
func (e *attemptTimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

func (e *Engine) invoke(ctx context.Context, timeout time.Duration, ep Endpoint, attempt func(context.Context, Endpoint) error) error {
	if timeout <= 0 {
		return attempt(ctx, ep)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	err := attempt(actx, ep)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = &attemptTimeoutError{after: timeout, err: err}
	}
	cancel()
	return err
}

// outcome judges an attempt: the caller's cancellation is Ignore, the
// per-attempt timeout a Failure, the rest is the classifier's call.
func (e *Engine) outcome(ctx context.Context, err error) Outcome {
	if err == nil {
		return Success
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return Ignore
	}
	var te *attemptTimeoutError
	if errors.As(err, &te) {
		return Failure
	}
	return e.classifier.Classify(err)
}

// Close stops the breakers' timers and ends every subscription. Do returns
// ErrClosed afterwards.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.mu.Lock()
	for _, h := range e.health {
		h.br.stop()
	}
	e.mu.Unlock()
	e.subMu.Lock()
	for _, ch := range e.subs {
		close(ch)
	}
	e.subs = nil
	e.subMu.Unlock()
	return nil
}
