package bcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/soap"
)

// Defaults of PollerConfig, as the monitors of the real status page use.
const (
	DefaultFeedInterval = 60 * time.Second
	DefaultFeedTimeout  = 10 * time.Second
)

// PollerConfig configures a Poller of the status page's JSON feed. URL is required.
type PollerConfig struct {
	// URL of the feed, e.g. "https://status.ehealth.fgov.be/nl/api/components/prod". Must be https.
	URL string
	// Interval between fetches; 0 = DefaultFeedInterval (60 s).
	Interval time.Duration
	// Timeout of each fetch; 0 = DefaultFeedTimeout (10 s).
	Timeout time.Duration
	// Services maps a component to the services it concerns. A key matches a component's id,
	// name_nl, name_fr, component_name_nl or group_name_nl, ignoring case;
	// values are service names as used with the Engine (e.g. "insurability:v2"). nil = the
	// Poller reports components only.
	Services map[string][]string
}

// Validate names the first bad field.
func (c PollerConfig) Validate() error {
	if err := checkFetchURL(c.URL); err != nil {
		return fmt.Errorf("bcp: PollerConfig.URL: %w", err)
	}
	if c.Interval < 0 {
		return fmt.Errorf("bcp: PollerConfig.Interval: negative (%v)", c.Interval)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("bcp: PollerConfig.Timeout: negative (%v)", c.Timeout)
	}
	for k, v := range c.Services {
		if strings.TrimSpace(k) == "" {
			return errors.New("bcp: PollerConfig.Services: empty component key")
		}
		for _, s := range v {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("bcp: PollerConfig.Services[%q]: empty service name", k)
			}
		}
	}
	return nil
}

// ServiceHealth is what the status page says about one configured service.
type ServiceHealth struct {
	Service string
	// Status is the worst known status of the service's components; ComponentUnknown when
	// none of them is in the feed or says something known.
	Status ComponentStatus
	// Since is when this Poller first saw the service in Status (the reading's time).
	Since time.Time
	// Components names the components mapped to the service that the feed holds.
	Components []string
}

// Reading is one good fetch of the feed. Treat it as immutable.
type Reading struct {
	At         time.Time // when it was fetched
	Components []Component
	Services   map[string]ServiceHealth // by configured service name
}

// Service returns the health of a configured service.
func (r *Reading) Service(name string) (ServiceHealth, bool) {
	if r == nil {
		return ServiceHealth{}, false
	}
	h, ok := r.Services[name]
	return h, ok
}

// MajorOutage reports whether the status page says the service has a major outage.
func (r *Reading) MajorOutage(service string) bool {
	h, ok := r.Service(service)
	return ok && h.Status == ComponentMajorOutage
}

// Poller fetches the status feed at once and every Interval, keeps the last good Reading and
// publishes it to subscribers when a component's or a service's status changes. A feed that
// cannot be fetched or parsed changes nothing: the last reading stays, the error is recorded
// in Status. Safe for concurrent use; Current is lock-free.
type Poller struct {
	cfg    PollerConfig
	client *http.Client
	clock  Clock
	log    *zap.Logger
	keys   map[string][]string // lower-cased keys (ids as given) → services

	cur atomic.Pointer[Reading]

	fetchMu sync.Mutex
	failing failureLog // guarded by fetchMu
	status  statusCell
	subs    subscribers[*Reading]

	loop *loop
}

// NewPoller validates cfg and starts polling in the background. Options: WithHTTPClient,
// WithClock, WithLogger.
func NewPoller(cfg PollerConfig, opts ...Option) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultFeedInterval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultFeedTimeout
	}
	o := buildOptions(opts)
	p := &Poller{
		cfg:    cfg,
		client: soap.WithoutRedirects(o.httpClient), // a redirect is a failed fetch, never followed
		clock:  o.clock,
		log:    o.logger.With(zap.String("component", "bcp.poller"), zap.String("url", cfg.URL)),
		keys:   map[string][]string{},
	}
	for k, v := range cfg.Services {
		key := strings.ToLower(strings.TrimSpace(k))
		p.keys[key] = append(p.keys[key], v...)
	}
	p.loop = startLoop(p.clock, cfg.Interval, func(ctx context.Context) { _, _ = p.Refresh(ctx) })
	return p, nil
}

// Current returns the last good reading, or nil before the first one.
func (p *Poller) Current() *Reading { return p.cur.Load() }

// Status returns the outcome of the latest fetches.
func (p *Poller) Status() PollStatus { return p.status.get() }

// OnChange calls f with the current reading at once (when there is one) and then with each
// reading whose statuses differ from the previous one, in order, one call at a time. f must
// not block for long nor call OnChange or Refresh. The returned function unsubscribes.
func (p *Poller) OnChange(f func(*Reading)) (cancel func()) {
	return p.subs.add(f, func() (*Reading, bool) {
		cur := p.cur.Load()
		return cur, cur != nil
	})
}

// Close stops polling and waits. Safe to call more than once.
func (p *Poller) Close() error {
	p.loop.close()
	return nil
}

// Refresh fetches the feed once now and reports whether the statuses changed. On error
// (a *FetchError or a *FeedError) the last reading stays in force.
func (p *Poller) Refresh(ctx context.Context) (changed bool, err error) {
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	start := p.clock.Now()
	body, _, _, err := boundedGet(ctx, p.client, p.cfg.URL, "", MaxStatusFeedBytes, p.cfg.Timeout, "application/json")
	var comps []Component
	if err == nil {
		comps, err = ParseStatusFeed(body)
		if err != nil {
			err = &FetchError{URL: p.cfg.URL, StatusCode: http.StatusOK, Err: err}
		}
	}
	p.status.attempted(start, err)
	if err != nil {
		if ctx.Err() == nil {
			p.failing.failed(p.log, err, "status feed unreadable; last reading kept", "status feed still unreadable")
		}
		return false, err
	}
	p.failing.reached(p.log, "status feed readable again")
	now := p.clock.Now()
	prev := p.cur.Load()
	r := p.reading(now, comps, prev)
	changed = prev == nil || statusesDiffer(prev, r)

	p.subs.publish(func() { p.cur.Store(r) }, r, changed)
	p.status.succeeded(now)
	if changed {
		for _, name := range sortedServiceNames(r) {
			h := r.Services[name]
			if prev == nil || prev.Services[name].Status != h.Status {
				p.log.Info("status page", zap.String("service", name), zap.Stringer("status", h.Status),
					zap.Strings("components", h.Components))
			}
		}
	}
	return changed, nil
}

func (p *Poller) reading(now time.Time, comps []Component, prev *Reading) *Reading {
	r := &Reading{At: now, Components: comps, Services: make(map[string]ServiceHealth, len(p.cfg.Services))}
	for _, svcs := range p.keys {
		for _, s := range svcs {
			r.Services[s] = ServiceHealth{Service: s}
		}
	}
	for _, c := range comps {
		seen := map[string]bool{}
		for _, key := range componentKeys(c) {
			for _, s := range p.keys[key] {
				if seen[s] {
					continue
				}
				seen[s] = true
				h := r.Services[s]
				h.Components = append(h.Components, c.Name())
				if c.Status.severity() > h.Status.severity() {
					h.Status = c.Status
				}
				r.Services[s] = h
			}
		}
	}
	for s, h := range r.Services {
		h.Since = now
		if prev != nil {
			if ph, ok := prev.Services[s]; ok && ph.Status == h.Status {
				h.Since = ph.Since
			}
		}
		r.Services[s] = h
	}
	return r
}

// componentKeys returns the lookup keys of c: its id as given, and its names lower-cased.
func componentKeys(c Component) []string {
	keys := make([]string, 0, 5)
	if c.ID != "" {
		keys = append(keys, strings.ToLower(c.ID))
	}
	for _, n := range []string{c.NameNL, c.NameFR, c.ComponentNL, c.GroupNL} {
		if n != "" {
			keys = append(keys, strings.ToLower(n))
		}
	}
	return keys
}

func statusesDiffer(a, b *Reading) bool {
	if len(a.Components) != len(b.Components) || len(a.Services) != len(b.Services) {
		return true
	}
	type key struct{ id, name string }
	prev := make(map[key]ComponentStatus, len(a.Components))
	for _, c := range a.Components {
		prev[key{c.ID, c.Name()}] = c.Status
	}
	for _, c := range b.Components {
		st, ok := prev[key{c.ID, c.Name()}]
		if !ok || st != c.Status {
			return true
		}
	}
	for s, h := range b.Services {
		if ph, ok := a.Services[s]; !ok || ph.Status != h.Status {
			return true
		}
	}
	return false
}

func sortedServiceNames(r *Reading) []string {
	names := make([]string, 0, len(r.Services))
	for n := range r.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// loop runs f at once and then Interval after each run ends, on the injected clock, until
// closed. It is the background goroutine of the Loader and of the Poller.
type loop struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startLoop(clock Clock, interval time.Duration, f func(ctx context.Context)) *loop {
	ctx, cancel := context.WithCancel(context.Background())
	lp := &loop{cancel: cancel, done: make(chan struct{})}
	tick := make(chan struct{}, 1)
	go func() {
		defer close(lp.done)
		for {
			f(ctx)
			if ctx.Err() != nil {
				return
			}
			t := clock.AfterFunc(interval, func() {
				select {
				case tick <- struct{}{}:
				default:
				}
			})
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-tick:
			}
		}
	}()
	return lp
}

func (lp *loop) close() {
	lp.once.Do(func() {
		lp.cancel()
		<-lp.done
	})
}
