package connector

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
)

// Status is everything a vendor shows on a status screen or a banner.
type Status struct {
	At       time.Time
	Services []ServiceStatus // every service of the list and every service with a mode, by name
	Token    TokenStatus
	Cache    cache.Stats // counts only: nothing is decrypted; see CountedAt
	Store    StoreStatus // whether the local store is there, and why not
	Outbox   OutboxStatus
	Feed     FeedStatus
	List     ListStatus
	// Retries is the engine's retry budget: retries granted and refused so far.
	Retries bcp.BudgetSnapshot
	// DroppedEvents counts events a subscriber missed because its buffer was full.
	DroppedEvents uint64
	// CountedAt is when Cache (and, with a shared StoreBackend, the outbox's DeadLetters and
	// OldestAge) were counted: at most StoreCountsMaxAge before At (zero when there is no
	// store).
	CountedAt time.Time
}

// ServiceStatus is one service.
type ServiceStatus struct {
	Name  string // short name, e.g. "insurability:v2"
	Mode  Mode
	Cause string    // why it is in this mode
	Since time.Time // when it entered this mode
	// Operator is the reason an operator gave for activating fallback ("" = none).
	Operator string
	Drill    bool
	// FeedStatus is what the status page says ("Major Outage", …; "" = not mapped).
	FeedStatus string
	Serving    string // URL of the endpoint that answered last
	Endpoints  []EndpointStatus
	// Regularisation counts answers served from the store that wait to be checked again.
	Regularisation int
}

// EndpointStatus is one endpoint of a service.
type EndpointStatus struct {
	URL      string
	Order    int
	Active   bool // ACTIVE in the service list
	Site     string
	Provider string
	Breaker  string // "closed", "open", "half-open", …
	// HeldUntil is the end of a Retry-After or hold-down (zero when none).
	HeldUntil time.Time
	// LastError is the error of the last failed attempt on the endpoint, at LastErrorAt
	// ("" = none since the client started); it never names a patient.
	LastError   string
	LastErrorAt time.Time
}

// endpointError is the last failed attempt on an endpoint.
type endpointError struct {
	text string
	at   time.Time
}

// TokenStatus is the STS token: the one the provider holds (obtained in the background or
// loaded from the store, so it shows before the first signed call), else the last one used.
type TokenStatus struct {
	Valid        bool
	NotOnOrAfter time.Time
	Requests     int64 // token requests sent so far
	Failures     int64 // token requests that brought no token
}

// OutboxStatus is the queue of writes.
type OutboxStatus struct {
	Pending     int
	OldestAge   time.Duration
	DeadLetters int
	Replaying   bool
	LastReplay  ReplayProgress
}

// FeedStatus is the last reading of the status feed.
type FeedStatus struct {
	URL         string
	LastAttempt time.Time
	LastSuccess time.Time
	LastError   string
}

// ListStatus is the service list in force.
type ListStatus struct {
	IssueInstant time.Time
	SHA256       string
	Source       string // "store", "builtin", "network", "none"
	LastAttempt  time.Time
	LastSuccess  time.Time
	LastError    string
}

// Status returns the state of every service, the token, the store and outbox, the status
// feed and the service list. It holds no personal data. The store's counts are reused for up
// to StoreCountsMaxAge (Status.CountedAt), so that calling Status every second costs little
// whatever the size of the store.
func (c *Client) Status() Status {
	now := c.clock.Now()
	st := Status{At: now}
	byName := map[string]*ServiceStatus{}
	get := func(name string) *ServiceStatus {
		s := byName[name]
		if s == nil {
			s = &ServiceStatus{Name: name}
			byName[name] = s
		}
		return s
	}
	snap := c.engine.Snapshot()
	st.DroppedEvents = snap.DroppedEvents
	st.Retries = snap.Budget
	for _, ss := range snap.Services {
		name := bcp.ShortServiceName(ss.ID)
		if name == "" {
			name = ss.ID
		}
		s := get(name)
		s.Serving = ss.Serving.URL
		for _, e := range ss.Endpoints {
			held := e.HeldUntil
			if e.HoldDownUntil.After(held) {
				held = e.HoldDownUntil
			}
			es := EndpointStatus{URL: e.URL, Order: e.Order, Active: e.Status == bcp.StatusActive,
				Site: e.Site, Provider: e.Provider, Breaker: e.Breaker.State.String(), HeldUntil: held}
			if v, ok := c.endpointErrs.Load(e.URL); ok {
				es.LastError, es.LastErrorAt = v.(endpointError).text, v.(endpointError).at
			}
			s.Endpoints = append(s.Endpoints, es)
		}
	}
	for _, ms := range c.modes.snapshot() {
		s := get(ms.name)
		s.Mode, s.Cause, s.Since, s.Operator, s.Drill = ms.mode, ms.cause, ms.since, ms.operator, ms.drill
	}
	if c.feed != nil {
		c.feed.fill(&st.Feed, get)
	}
	for name, s := range byName {
		s.Regularisation = c.regular.pendingCount(name)
		st.Services = append(st.Services, *s)
	}
	sort.Slice(st.Services, func(i, j int) bool { return st.Services[i].Name < st.Services[j].Name })

	if tok := c.currentToken(); tok != nil {
		st.Token = TokenStatus{Valid: now.Before(tok.NotOnOrAfter), NotOnOrAfter: tok.NotOnOrAfter}
	}
	st.Token.Requests, st.Token.Failures = c.tokens.Requests(), c.tokens.Failures()
	st.Store = c.storeStatus
	if c.store != nil {
		st.Cache, st.Outbox, st.CountedAt = c.storeCounts(now)
	}
	c.replayMu.Lock()
	st.Outbox.Replaying, st.Outbox.LastReplay = c.replaying, c.lastReplay
	c.replayMu.Unlock()

	if l := c.loader.Current(); l != nil {
		st.List.IssueInstant, st.List.SHA256 = l.IssueInstant, l.SHA256
	}
	st.List.Source = c.loader.Source().String()
	ls := c.loader.Status()
	st.List.LastAttempt, st.List.LastSuccess = ls.LastAttempt, ls.LastSuccess
	if ls.LastErr != nil {
		st.List.LastError = ls.LastErr.Error()
	}
	return st
}

// Subscribe returns a channel of the client's events (mode changes with their cause,
// failovers, breaker moves, status-feed changes, replay progress, regularisation reports)
// and a function that ends the subscription. Sends never block: a full buffer drops events
// (counted in Status). buffer <= 0 = 64. Close ends every subscription.
func (c *Client) Subscribe(buffer int) (<-chan Event, func()) { return c.events.subscribe(buffer) }

// ActivateFallback puts service into fallback mode by hand (the operator's emergency switch):
// its priority functions answer from the local store without trying the network and its
// writes queue, until EndFallback. reason is logged and shown in Status; it must not hold
// personal data. An unknown service (not one of Services nor of the service list) is a
// *RequestError; after Close, ErrClosed.
func (c *Client) ActivateFallback(service, reason string) error {
	_, end, err := c.begin(context.Background())
	if err != nil {
		return err
	}
	defer end()
	if err := c.knownService(service); err != nil {
		return err
	}
	if reason == "" {
		reason = "activated by an operator"
	}
	c.log.Info("connector: fallback activated by an operator", zap.String("service", service), zap.String("reason", reason))
	c.modes.update(service, CauseOperator+": "+reason, func(s *serviceState) { s.operator = reason })
	c.saveOperator() // a restart keeps it
	return nil
}

// EndFallback ends a fallback of service by hand: the operator's own, and a Major Outage
// reading of the status feed (until the feed says something else). The service recovers
// (outbox replay, regularisation) and returns to normal; a drill runs to its end.
func (c *Client) EndFallback(service string) error {
	_, end, err := c.begin(context.Background())
	if err != nil {
		return err
	}
	defer end()
	if err := c.knownService(service); err != nil {
		return err
	}
	c.log.Info("connector: fallback ended by an operator", zap.String("service", service))
	if c.feed != nil {
		c.feed.endOutage(service) // the operator has the last word over a Major Outage reading
	}
	c.modes.update(service, CauseOperatorEnd, func(s *serviceState) {
		s.operator, s.unavailable, s.feedOutage = "", false, false
	})
	c.saveOperator()
	return nil
}

// Mode returns the current mode of service and its cause.
func (c *Client) Mode(service string) (Mode, string) {
	m, cause, _ := c.modes.mode(service)
	return m, cause
}

// feedWatcher maps the status feed onto service modes: Major Outage puts a mapped service in
// fallback at once; any other reading ends that; an unreadable feed changes nothing for a
// while, but a Major Outage reading older than three poll intervals no longer holds a service
// in fallback (the status site is often down in a real incident: the breakers decide then).
// An operator's EndFallback overrides the reading until the feed says something else.
type feedWatcher struct {
	c        *Client
	poller   *bcp.Poller
	maxAge   time.Duration
	mu       sync.Mutex
	status   map[string]string // service → last status name published
	override map[string]string // service → status an operator overrode
}

func newFeedWatcher(c *Client, hc *http.Client) (*feedWatcher, error) {
	p, err := bcp.NewPoller(bcp.PollerConfig{URL: c.cfg.StatusFeedURL, Interval: c.cfg.StatusPoll, Timeout: c.cfg.Timeouts.Attempt,
		Services: c.cfg.StatusComponents}, bcp.WithHTTPClient(hc), bcp.WithClock(c.clock), bcp.WithLogger(c.log))
	if err != nil {
		return nil, err
	}
	return &feedWatcher{c: c, poller: p, maxAge: 3 * c.cfg.StatusPoll, status: map[string]string{}, override: map[string]string{}}, nil
}

// start subscribes to the poller and checks the reading's age every poll interval; the
// returned function stops both.
func (w *feedWatcher) start() func() {
	cancel := w.poller.OnChange(func(r *bcp.Reading) { w.apply(r, true) })
	done := make(chan struct{})
	w.c.goBackground(func() {
		for {
			tick := make(chan struct{})
			t := w.c.clock.AfterFunc(w.c.cfg.StatusPoll, func() { close(tick) })
			select {
			case <-done:
				t.Stop()
				return
			case <-tick:
			}
			fresh := w.c.clock.Now().Sub(w.poller.Status().LastSuccess) <= w.maxAge
			w.apply(w.poller.Current(), fresh)
		}
	})
	return func() {
		cancel()
		close(done)
		w.poller.Close()
	}
}

// apply sets each mapped service's feed outage from reading r; a stale reading holds none.
func (w *feedWatcher) apply(r *bcp.Reading, fresh bool) {
	if r == nil {
		return
	}
	for name, h := range r.Services {
		status := h.Status.String()
		if !fresh {
			status = "stale: " + status
		}
		w.mu.Lock()
		prev, seen := w.status[name]
		w.status[name] = status
		overridden, isOverridden := w.override[name]
		if isOverridden && overridden != h.Status.String() {
			delete(w.override, name) // the feed moved on: it decides again
			isOverridden = false
		}
		w.mu.Unlock()
		if seen && prev == status {
			continue
		}
		w.c.events.publish(Event{Kind: EventFeed, Service: name, Cause: status, At: r.At})
		outage := fresh && h.Status == bcp.ComponentMajorOutage && !isOverridden
		cause := CauseFeedRecovered
		switch {
		case outage:
			cause = CauseFeedOutage
		case !fresh:
			cause = CauseFeedStale
		}
		w.c.modes.update(name, cause, func(s *serviceState) {
			if s.feedOutage && !outage {
				s.unavailable = false // the network was not tried meanwhile: let it be tried again
			}
			s.feedOutage = outage
		})
	}
}

// endOutage is the operator overriding the feed's reading of service.
func (w *feedWatcher) endOutage(service string) {
	r := w.poller.Current()
	if h, ok := r.Service(service); ok && h.Status == bcp.ComponentMajorOutage {
		w.mu.Lock()
		w.override[service] = h.Status.String()
		w.mu.Unlock()
	}
}

func (w *feedWatcher) fill(fs *FeedStatus, get func(string) *ServiceStatus) {
	fs.URL = w.c.cfg.StatusFeedURL
	ps := w.poller.Status()
	fs.LastAttempt, fs.LastSuccess = ps.LastAttempt, ps.LastSuccess
	if ps.LastErr != nil {
		fs.LastError = ps.LastErr.Error()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, status := range w.status {
		get(name).FeedStatus = status
	}
}

// isExpired reports whether a store error says the answer is too old.
func isExpired(err error) bool { return errors.Is(err, cache.ErrExpired) }
