package connector

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DrillReport is the outcome of a drill: the services answered from the local store for a
// while as in an outage, and every such answer was compared with a live one made in the
// shadow. Patients are named by pseudonyms (stable for one cache key, not reversible without
// it), so a report may be kept and shared.
type DrillReport struct {
	Services []string
	Started  time.Time
	Ended    time.Time
	// Calls is how many priority calls the drill answered from the store (or failed to).
	Calls int
	// Answered is how many of them the store answered.
	Answered int
	// Matches counts store answers equal to the live answer.
	Matches int
	// Mismatches are store answers that differ from the live answer.
	Mismatches []DrillMismatch
	// Misses are patients the store could not answer (pseudonyms), with the service.
	Misses []DrillMiss
	// ShadowErrors counts shadow live calls that failed (the comparison could not be made).
	ShadowErrors int
}

// DrillMismatch is a store answer that differs from the live one.
type DrillMismatch struct {
	Service string
	Patient string   // pseudonym
	Fields  []string // the answer's fields that differ
}

// DrillMiss is a call the store could not answer.
type DrillMiss struct {
	Service string
	Patient string // pseudonym
	Reason  string // "not cached", "expired"
}

// drillState is the running drill, if any.
type drillState struct {
	running  atomic.Bool // a drill runs: the hot path looks no further when false
	mu       sync.Mutex
	services map[string]bool
	run      *drillRun
}

// drillRun is one drill: its report and its shadow calls.
type drillRun struct {
	report *DrillReport
	wg     sync.WaitGroup
	sem    chan struct{}
}

func (d *drillState) active(service string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.services[service]
}

// ErrDrillRunning is returned by Drill while another drill runs.
var ErrDrillRunning = errors.New("connector: a drill is already running")

// Drill rehearses the emergency procedure on services (short names; nil = insurability and
// generic insurability): for duration (or until ctx ends) they are in fallback mode and
// answer from the local store, writes queue in the outbox, and every answer served from the
// store is compared with a live call made in the shadow, which the caller never waits for.
// Drill then ends fallback (writes are replayed) and returns the report. The drill's start
// and end are events and info logs; no patient appears in them.
func (c *Client) Drill(ctx context.Context, services []string, duration time.Duration) (DrillReport, error) {
	if len(services) == 0 {
		services = []string{ServiceInsurability, ServiceGenericInsurability}
	}
	if duration <= 0 {
		return DrillReport{}, &RequestError{Field: "duration", Reason: "must be positive"}
	}
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return DrillReport{}, err
	}
	defer end()
	for _, s := range services {
		if err := c.knownService(s); err != nil {
			return DrillReport{}, err
		}
	}
	d := c.drills
	d.mu.Lock()
	if d.run != nil {
		d.mu.Unlock()
		return DrillReport{}, ErrDrillRunning
	}
	rep := &DrillReport{Services: append([]string(nil), services...), Started: c.clock.Now()}
	run := &drillRun{report: rep, sem: make(chan struct{}, 16)}
	d.run = run
	d.running.Store(true)
	d.services = map[string]bool{}
	for _, s := range services {
		d.services[s] = true
	}
	d.mu.Unlock()

	c.log.Info("connector: drill started", zap.Strings("services", services), zap.Duration("duration", duration))
	c.events.publish(Event{Kind: EventDrill, Cause: "drill started", At: rep.Started})
	for _, s := range services {
		c.modes.update(s, CauseDrill, func(st *serviceState) { st.drill = true })
	}

	done := make(chan struct{})
	t := c.clock.AfterFunc(duration, func() { close(done) })
	select {
	case <-done:
	case <-ctx.Done():
		t.Stop()
	case <-c.ctx.Done():
		t.Stop()
	}

	d.mu.Lock()
	d.services = nil
	d.run = nil // no shadow starts after this
	d.running.Store(false)
	d.mu.Unlock()
	for _, s := range services {
		c.modes.update(s, CauseDrillEnd, func(st *serviceState) { st.drill = false; st.unavailable = false })
	}
	run.wg.Wait()
	d.mu.Lock()
	out := *rep
	d.mu.Unlock()
	out.Ended = c.clock.Now()
	sort.Slice(out.Misses, func(i, j int) bool { return out.Misses[i].Patient < out.Misses[j].Patient })
	sort.Slice(out.Mismatches, func(i, j int) bool { return out.Mismatches[i].Patient < out.Mismatches[j].Patient })
	c.log.Info("connector: drill ended", zap.Int("calls", out.Calls), zap.Int("answered", out.Answered),
		zap.Int("matches", out.Matches), zap.Int("mismatches", len(out.Mismatches)), zap.Int("misses", len(out.Misses)),
		zap.Int("shadow_errors", out.ShadowErrors))
	c.events.publish(Event{Kind: EventDrill, Cause: "drill ended", At: out.Ended})
	if err := c.ended(ctx); err != nil {
		return out, err // ErrClosed when Close ended the drill
	}
	return out, ctx.Err()
}

// pseudonym names a cache key in reports without revealing it.
func (c *Client) pseudonym(key string) string {
	m := hmac.New(sha256.New, c.pseudo)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// shadow counts a drill answer and compares it, in the background, with a live one.
func shadow[A, Q any](c *Client, p priority[A, Q], served outcome[A], serveErr error) {
	d := c.drills
	d.mu.Lock()
	run := d.run
	if run == nil {
		d.mu.Unlock()
		return
	}
	rep := run.report
	rep.Calls++
	patient := c.pseudonym(p.service + "\x00" + p.key)
	if serveErr != nil {
		reason := "not cached"
		if isExpired(serveErr) {
			reason = "expired"
		}
		rep.Misses = append(rep.Misses, DrillMiss{Service: p.service, Patient: patient, Reason: reason})
		d.mu.Unlock()
		return
	}
	rep.Answered++
	run.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer run.wg.Done()
		select {
		case run.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		defer func() { <-run.sem }()
		ctx, cancel := context.WithTimeout(c.ctx, 2*c.cfg.Timeouts.Attempt)
		defer cancel()
		ans, _, err := p.live(c, ctx, p.request)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			rep.ShadowErrors++
			return
		}
		if fields := diffFields(served.Answer, ans); len(fields) > 0 {
			rep.Mismatches = append(rep.Mismatches, DrillMismatch{Service: p.service, Patient: patient, Fields: fields})
		} else {
			rep.Matches++
		}
	}()
}
