package connector

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Mode is how a service is being served.
type Mode int

// Modes of a service (issue 7, docs/design.md).
const (
	// ModeNormal: the default endpoint serves.
	ModeNormal Mode = iota
	// ModeFailedOver: a fallback endpoint of the service list serves.
	ModeFailedOver
	// ModeFallback: the local store serves: reads from the cache, writes to the outbox.
	ModeFallback
	// ModeRecovering: the platform is back and the outbox is being replayed.
	ModeRecovering
)

// String returns "normal", "failed-over", "fallback" or "recovering".
func (m Mode) String() string {
	switch m {
	case ModeNormal:
		return "normal"
	case ModeFailedOver:
		return "failed-over"
	case ModeFallback:
		return "fallback"
	case ModeRecovering:
		return "recovering"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Causes of a mode change, as they appear in events, logs and Status.
const (
	CauseUnavailable    = "every endpoint failed"
	CauseCallTimeout    = "no endpoint answered within the call's budget"
	CauseLiveAgain      = "a live call succeeded"
	CauseFeedOutage     = "status feed: major outage"
	CauseFeedRecovered  = "status feed: outage over"
	CauseFeedStale      = "status feed: reading too old"
	CauseOperator       = "operator"
	CauseOperatorEnd    = "operator ended fallback"
	CauseDrill          = "drill"
	CauseDrillEnd       = "drill ended"
	CauseFailover       = "a fallback endpoint serves"
	CauseFailback       = "the default endpoint serves again"
	CauseServiceList    = "service list: default endpoint inactive"
	CauseServiceListEnd = "service list: default endpoint active"
	CauseReplayed       = "outbox replayed"
)

// serviceState is what the client knows of one service; guarded by modeTable.mu.
type serviceState struct {
	name  string
	mode  Mode
	cause string
	since time.Time

	operator    string // reason, "" = not activated
	drill       bool
	feedOutage  bool
	unavailable bool // the last live call failed on every endpoint
	failedOver  bool // the engine serves a non-default endpoint
	listBCP     bool // the service list's active endpoint is not the default
	recovering  bool
}

// forced reports whether the network must not be tried at all.
func (s *serviceState) forced() bool { return s.operator != "" || s.drill || s.feedOutage }

func (s *serviceState) compute() Mode {
	switch {
	case s.forced() || s.unavailable:
		return ModeFallback
	case s.recovering:
		return ModeRecovering
	case s.failedOver || s.listBCP:
		return ModeFailedOver
	}
	return ModeNormal
}

// modeTable holds every service's state and publishes its changes.
type modeTable struct {
	mu       sync.Mutex
	services map[string]*serviceState
	now      func() time.Time
	log      *zap.Logger
	publish  func(Event)
	// onChange is called (without the lock) after a service's mode changed.
	onChange func(service string, from, to Mode, cause string)
	// flags is a copy of each service's flags read without a lock on the hot path.
	flags sync.Map // service → serviceFlags
}

func newModeTable(now func() time.Time, log *zap.Logger, publish func(Event)) *modeTable {
	return &modeTable{services: map[string]*serviceState{}, now: now, log: log, publish: publish}
}

// state returns the service's state, creating it; the caller holds mu.
func (t *modeTable) state(service string) *serviceState {
	s := t.services[service]
	if s == nil {
		s = &serviceState{name: service, since: t.now()}
		t.services[service] = s
	}
	return s
}

// update applies f to service's state and recomputes its mode; a change is logged at info
// with its cause (never personal data) and published.
func (t *modeTable) update(service, cause string, f func(*serviceState)) {
	t.mu.Lock()
	s := t.state(service)
	f(s)
	if s.mode == ModeFallback && !s.forced() && !s.unavailable {
		s.recovering = true // the platform is back: replay and regularise before normal
	}
	from, to := s.mode, s.compute()
	t.flags.Store(service, serviceFlags{forced: s.forced(), unavailable: s.unavailable, mode: s.compute()})
	var ev Event
	changed := from != to
	if changed {
		s.mode, s.cause, s.since = to, cause, t.now()
		ev = Event{Kind: EventModeChanged, Service: service, Mode: to, Previous: from, Cause: cause, At: s.since}
	}
	t.mu.Unlock()
	if !changed {
		return
	}
	t.log.Info("connector: service mode changed", zap.String("service", service),
		zap.Stringer("from", from), zap.Stringer("to", to), zap.String("cause", cause))
	t.publish(ev)
	if t.onChange != nil {
		t.onChange(service, from, to, cause)
	}
}

// mode returns a service's current mode and cause.
func (t *modeTable) mode(service string) (Mode, string, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.services[service]
	if s == nil {
		return ModeNormal, "", time.Time{}
	}
	return s.mode, s.cause, s.since
}

// forced reports, without locking, whether the service must be answered locally without
// trying the network (feed outage, operator, drill).
func (t *modeTable) forced(service string) bool {
	v, ok := t.flags.Load(service)
	return ok && v.(serviceFlags).forced
}

// needsLive reports, without locking, whether a live answer would end an automatic fallback.
func (t *modeTable) needsLive(service string) bool {
	v, ok := t.flags.Load(service)
	return ok && v.(serviceFlags).unavailable
}

// current returns, without locking, the service's mode (normal for a service never seen).
func (t *modeTable) current(service string) Mode {
	v, ok := t.flags.Load(service)
	if !ok {
		return ModeNormal
	}
	return v.(serviceFlags).mode
}

type serviceFlags struct {
	forced, unavailable bool
	mode                Mode
}

// isFallback reports whether the service is in fallback mode for any reason.
func (t *modeTable) isFallback(service string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.services[service]
	return s != nil && s.mode == ModeFallback
}

// operators returns the operator's activations: service → reason.
func (t *modeTable) operators() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]string{}
	for name, s := range t.services {
		if s.operator != "" {
			out[name] = s.operator
		}
	}
	return out
}

// snapshot copies every state.
func (t *modeTable) snapshot() []serviceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]serviceState, 0, len(t.services))
	for _, s := range t.services {
		out = append(out, *s)
	}
	return out
}

// EventKind says what an Event reports.
type EventKind int

// Kinds of Event.
const (
	// EventModeChanged: a service changed mode (Mode, Previous, Cause).
	EventModeChanged EventKind = iota
	// EventFailedOver: a call was served by a fallback endpoint (Endpoint).
	EventFailedOver
	// EventFailedBack: the default endpoint serves again (Endpoint).
	EventFailedBack
	// EventBreaker: an endpoint's breaker changed state (Endpoint, Cause = "from → to").
	EventBreaker
	// EventFeed: the status feed's reading of a mapped component changed (Cause = status).
	EventFeed
	// EventReplay: outbox replay progress (Replay).
	EventReplay
	// EventRegularisation: answers served from the cache were checked again live (Regularisation).
	EventRegularisation
	// EventServiceList: a new service list is in force (Cause = its IssueInstant).
	EventServiceList
	// EventDrill: a drill started or ended (Cause).
	EventDrill
)

// String returns the kind in kebab case, e.g. "mode-changed".
func (k EventKind) String() string {
	switch k {
	case EventModeChanged:
		return "mode-changed"
	case EventFailedOver:
		return "failed-over"
	case EventFailedBack:
		return "failed-back"
	case EventBreaker:
		return "breaker"
	case EventFeed:
		return "feed"
	case EventReplay:
		return "replay"
	case EventRegularisation:
		return "regularisation"
	case EventServiceList:
		return "service-list"
	case EventDrill:
		return "drill"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one change a vendor may show (a banner, a progress bar). It never carries
// personal data except inside Regularisation (see RegularisationReport).
type Event struct {
	Kind     EventKind
	Service  string // short service name
	Mode     Mode   // EventModeChanged: the new mode
	Previous Mode   // EventModeChanged: the mode left
	Cause    string
	Endpoint string // URL, for failover, failback and breaker events
	At       time.Time

	Replay         *ReplayProgress
	Regularisation *RegularisationReport
}

// ReplayProgress is where an outbox replay stands.
type ReplayProgress struct {
	Delivered int  // writes delivered so far in this replay
	Rejected  int  // writes the platform refused (moved to dead letters)
	Pending   int  // writes still queued
	Done      bool // the replay is over
}

// hub fans events out to subscribers without ever blocking the caller: a subscriber whose
// buffer is full misses events (counted in Status).
type hub struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	dropped uint64
	closed  bool
	// observe sees every event before the subscribers (Observer.Event); set before use.
	observe func(Event)
}

func (h *hub) subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = 64
	}
	ch := make(chan Event, buffer)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	if h.subs == nil {
		h.subs = map[chan Event]struct{}{}
	}
	h.subs[ch] = struct{}{}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.subs[ch]; ok {
				delete(h.subs, ch)
				close(ch)
			}
		})
	}
}

func (h *hub) publish(ev Event) {
	if h.observe != nil {
		h.observe(ev)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped++
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		close(ch)
	}
	h.subs = nil
}
