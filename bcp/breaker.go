package bcp

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// State is the state of a circuit breaker.
type State int

const (
	// StateClosed lets every call through and counts failures.
	StateClosed State = iota
	// StateHalfOpen lets exactly one probe through at a time; others get ErrOpen.
	StateHalfOpen
	// StateOpen refuses every call until the cool-down ends.
	StateOpen
	// StateForcedOpen refuses every call until an operator closes or resets the breaker.
	StateForcedOpen
	// StateForcedClosed lets every call through and never opens, whatever fails.
	StateForcedClosed
)

var stateNames = [...]string{"closed", "half-open", "open", "forced-open", "forced-closed"}

// String returns "closed", "half-open", "open", "forced-open" or "forced-closed".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// BreakerConfig says when a breaker opens and how long it stays open. Every
// zero field takes the default given in its comment (see DefaultBreakerConfig).
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker after that many failures in a row.
	// 0 = 5; negative = never open on a run of failures.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when failures/calls over Window reaches it
	// (with at least MinimumRequests calls). 0 = 0.5; negative = no ratio rule.
	FailureRatio float64
	// MinimumRequests is the volume under which the ratio rule does not apply. 0 = 20.
	MinimumRequests int
	// Window is the length of the sliding window of the ratio rule. 0 = 30 s.
	Window time.Duration
	// Buckets is the number of time buckets of the window's ring. 0 = 10.
	Buckets int
	// OpenTimeout is the first cool-down before a probe is let through. 0 = 5 s.
	OpenTimeout time.Duration
	// MaxOpenTimeout caps the cool-down, which grows by Multiplier each time a
	// probe fails or the breaker re-opens soon after closing. 0 = 2 min.
	MaxOpenTimeout time.Duration
	// Multiplier is the growth factor of the cool-down. 0 = 2.
	Multiplier float64
	// Jitter is the randomization factor of the cool-down (0.1 = ±10 %).
	// 0 = 0.1; negative = none (exact cool-downs, for tests).
	Jitter float64
	// OnStateChange, when set, is called on every transition, in order, while
	// the breaker's lock is held: it must be quick and must not call the breaker.
	OnStateChange func(from, to State)
}

// DefaultBreakerConfig is the configuration a zero BreakerConfig stands for.
var DefaultBreakerConfig = BreakerConfig{
	ConsecutiveFailures: 5,
	FailureRatio:        0.5,
	MinimumRequests:     20,
	Window:              30 * time.Second,
	Buckets:             10,
	OpenTimeout:         5 * time.Second,
	MaxOpenTimeout:      2 * time.Minute,
	Multiplier:          2,
	Jitter:              0.1,
}

// Validate reports the first invalid field.
func (c BreakerConfig) Validate() error {
	switch {
	case c.FailureRatio > 1:
		return fmt.Errorf("bcp: BreakerConfig.FailureRatio %v is above 1", c.FailureRatio)
	case c.MinimumRequests < 0:
		return fmt.Errorf("bcp: BreakerConfig.MinimumRequests %d is negative", c.MinimumRequests)
	case c.Window < 0:
		return fmt.Errorf("bcp: BreakerConfig.Window %s is negative", c.Window)
	case c.Buckets < 0 || c.Buckets > 1000:
		return fmt.Errorf("bcp: BreakerConfig.Buckets %d is outside 0..1000", c.Buckets)
	case c.OpenTimeout < 0:
		return fmt.Errorf("bcp: BreakerConfig.OpenTimeout %s is negative", c.OpenTimeout)
	case c.MaxOpenTimeout < 0:
		return fmt.Errorf("bcp: BreakerConfig.MaxOpenTimeout %s is negative", c.MaxOpenTimeout)
	case c.Multiplier != 0 && c.Multiplier < 1:
		return fmt.Errorf("bcp: BreakerConfig.Multiplier %v is below 1", c.Multiplier)
	case c.Jitter >= 1:
		return fmt.Errorf("bcp: BreakerConfig.Jitter %v is not below 1", c.Jitter)
	}
	d := c.withDefaults()
	if d.MaxOpenTimeout < d.OpenTimeout {
		return fmt.Errorf("bcp: BreakerConfig.MaxOpenTimeout %s is below OpenTimeout %s", d.MaxOpenTimeout, d.OpenTimeout)
	}
	if d.Window/time.Duration(d.Buckets) <= 0 {
		return fmt.Errorf("bcp: BreakerConfig.Window %s is too short for %d buckets", d.Window, d.Buckets)
	}
	return nil
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	d := DefaultBreakerConfig
	if c.ConsecutiveFailures != 0 {
		d.ConsecutiveFailures = c.ConsecutiveFailures
	}
	if c.FailureRatio != 0 {
		d.FailureRatio = c.FailureRatio
	}
	if c.MinimumRequests != 0 {
		d.MinimumRequests = c.MinimumRequests
	}
	if c.Window != 0 {
		d.Window = c.Window
	}
	if c.Buckets != 0 {
		d.Buckets = c.Buckets
	}
	if c.OpenTimeout != 0 {
		d.OpenTimeout = c.OpenTimeout
	}
	if c.MaxOpenTimeout != 0 {
		d.MaxOpenTimeout = c.MaxOpenTimeout
	}
	if c.Multiplier != 0 {
		d.Multiplier = c.Multiplier
	}
	switch {
	case c.Jitter < 0:
		d.Jitter = 0
	case c.Jitter > 0:
		d.Jitter = c.Jitter
	}
	d.OnStateChange = c.OnStateChange
	return d
}

// Layout of Breaker.word: the state, two flags and a generation that changes
// on every transition, so a permit from an earlier period cannot move the
// breaker of a later one.
const (
	wordStateMask = 0x7
	wordCounting  = 1 << 3 // successes are being counted for the ratio rule
	wordProbe     = 1 << 4 // the half-open probe is taken
	wordGenShift  = 8
)

func wordState(w uint64) State { return State(w & wordStateMask) }
func wordGen(w uint64) uint64  { return w >> wordGenShift }

// Permit is the admission of one call by Allow, handed back to Done.
type Permit uint64

// IsProbe reports whether the permit is the half-open probe.
func (p Permit) IsProbe() bool { return p&wordProbe != 0 }

// Breaker is a circuit breaker for one endpoint. It opens on a run of
// consecutive failures or on a failure ratio over a sliding window, stays open
// for a cool-down that grows with exponential backoff, then lets exactly one
// probe through at a time; a successful probe closes it.
//
// Allow and Done are lock-free, and while the breaker is closed and has seen
// no failure they only load atomic words: no clock read, no write, no
// allocation. Successes are counted for the ratio rule only from the first
// failure of a window on, since before it they could not open the breaker.
// A Breaker is safe for concurrent use.
type Breaker struct {
	word    atomic.Uint64
	consec  atomic.Int64 // failures in a row
	pending atomic.Int64 // successes not yet placed in the window

	cfg      BreakerConfig
	clock    Clock
	onChange func(from, to State, at time.Time) // set by the engine before use

	mu        sync.Mutex
	buckets   []bucket
	width     int64 // ns per bucket
	lastFlush int64 // when pending successes were last placed
	since     int64 // when the current state began (unix ns)
	openUntil int64
	closedAt  int64
	bo        *backoff.ExponentialBackOff
	timer     Timer
	stopped   bool
}

type bucket struct {
	epoch         int64 // index of the bucket in time (unix ns / width)
	succ, failure int64
}

// NewBreaker returns a closed breaker. Of the options only WithClock matters.
func NewBreaker(cfg BreakerConfig, opts ...Option) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	return newBreaker(cfg.withDefaults(), o.clock), nil
}

func newBreaker(cfg BreakerConfig, clock Clock) *Breaker {
	b := &Breaker{
		cfg:     cfg,
		clock:   clock,
		buckets: make([]bucket, cfg.Buckets),
		width:   int64(cfg.Window) / int64(cfg.Buckets),
	}
	b.bo = &backoff.ExponentialBackOff{
		InitialInterval:     cfg.OpenTimeout,
		RandomizationFactor: cfg.Jitter,
		Multiplier:          cfg.Multiplier,
		MaxInterval:         cfg.MaxOpenTimeout,
		MaxElapsedTime:      0, // never give up: a breaker always probes again
		Stop:                backoff.Stop,
		Clock:               clockAdapter{clock},
	}
	b.bo.Reset()
	b.since = clock.Now().UnixNano()
	return b
}

type clockAdapter struct{ c Clock }

func (a clockAdapter) Now() time.Time { return a.c.Now() }

// State returns the current state.
func (b *Breaker) State() State { return wordState(b.word.Load()) }

// Allow asks to make one call. It returns ErrOpen when the breaker is open,
// forced open, or half-open with its probe already in flight; otherwise the
// caller makes the call and must report its outcome with Done(permit, outcome).
func (b *Breaker) Allow() (Permit, error) {
	w := b.word.Load()
	for {
		switch wordState(w) {
		case StateClosed, StateForcedClosed:
			return Permit(w), nil
		case StateHalfOpen:
			if w&wordProbe != 0 {
				return 0, ErrOpen
			}
			if b.word.CompareAndSwap(w, w|wordProbe) {
				return Permit(w | wordProbe), nil
			}
			w = b.word.Load()
		default:
			return 0, ErrOpen
		}
	}
}

// Done reports the outcome of a call admitted by Allow. Ignore leaves the
// breaker as it is (a probe's slot is freed for the next call).
func (b *Breaker) Done(p Permit, o Outcome) {
	if p.IsProbe() {
		b.probeDone(p, o)
		return
	}
	switch o {
	case Success:
		w := b.word.Load()
		if w&wordCounting != 0 && wordState(w) == StateClosed {
			b.pending.Add(1)
		}
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
	case Failure:
		b.recordFailure()
	}
}

// Call runs fn if the breaker allows it, counting a nil error as a success and
// any other as a failure. It returns ErrOpen without calling fn when refused.
func (b *Breaker) Call(fn func() error) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	err = fn()
	if err != nil {
		b.Done(p, Failure)
		return err
	}
	b.Done(p, Success)
	return nil
}

func (b *Breaker) recordFailure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	st := wordState(w)
	if st != StateClosed && st != StateForcedClosed {
		return // a late answer from before the breaker opened
	}
	now := b.clock.Now().UnixNano()
	c := b.consec.Add(1)
	if st == StateForcedClosed {
		return
	}
	idx := now / b.width
	cur := b.bucketAt(idx)
	if w&wordCounting == 0 || b.windowFailures(idx) == 0 {
		// First failure of a window: successes before it could not have
		// opened the breaker, so counting starts here.
		b.pending.Store(0)
		b.lastFlush = now
		if w&wordCounting == 0 {
			b.word.Store(w | wordCounting)
		}
	} else {
		b.flushPending(now, idx)
	}
	cur.failure++
	if n := int64(b.cfg.ConsecutiveFailures); n > 0 && c >= n {
		b.openLocked(now, st)
		return
	}
	if b.cfg.FailureRatio > 0 {
		f, total := b.windowCounts(idx)
		if total >= int64(b.cfg.MinimumRequests) && float64(f) >= b.cfg.FailureRatio*float64(total) {
			b.openLocked(now, st)
		}
	}
}

func (b *Breaker) bucketAt(idx int64) *bucket {
	s := &b.buckets[int(idx%int64(len(b.buckets)))]
	if s.epoch != idx {
		*s = bucket{epoch: idx}
	}
	return s
}

func (b *Breaker) live(s *bucket, idx int64) bool {
	return s.epoch <= idx && idx-s.epoch < int64(len(b.buckets))
}

func (b *Breaker) windowFailures(idx int64) int64 {
	f, _ := b.windowCounts(idx)
	return f
}

func (b *Breaker) windowCounts(idx int64) (failures, total int64) {
	for i := range b.buckets {
		s := &b.buckets[i]
		if b.live(s, idx) {
			failures += s.failure
			total += s.failure + s.succ
		}
	}
	return failures, total
}

// flushPending spreads the successes counted since the last flush evenly over
// the time they arrived in, so those older than the window fall out of it.
func (b *Breaker) flushPending(now, idx int64) {
	p := b.pending.Swap(0)
	from := b.lastFlush
	b.lastFlush = now
	if p <= 0 {
		return
	}
	span := now - from
	if span <= 0 {
		b.bucketAt(idx).succ += p
		return
	}
	first := from / b.width
	if oldest := idx - int64(len(b.buckets)) + 1; first < oldest {
		first = oldest
	}
	for e := first; e <= idx; e++ {
		lo, hi := max(e*b.width, from), min((e+1)*b.width, now)
		if hi <= lo {
			continue
		}
		share := int64(math.Round(float64(p) * float64(hi-lo) / float64(span)))
		b.bucketAt(e).succ += share
	}
}

// openLocked opens the breaker for the next cool-down and arms the timer that
// makes it half-open.
func (b *Breaker) openLocked(now int64, from State) {
	if from == StateClosed && b.closedAt != 0 && now-b.closedAt > int64(b.cfg.MaxOpenTimeout) {
		b.bo.Reset() // it stayed closed long enough: start the cool-downs afresh
	}
	d := b.bo.NextBackOff()
	if d <= 0 {
		d = b.cfg.OpenTimeout
	}
	gen := wordGen(b.word.Load()) + 1
	b.word.Store(uint64(StateOpen) | gen<<wordGenShift)
	b.openUntil = now + int64(d)
	b.resetWindow()
	b.armLocked(d, gen)
	b.transition(from, StateOpen, now)
}

func (b *Breaker) armLocked(d time.Duration, gen uint64) {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if b.stopped {
		return
	}
	b.timer = b.clock.AfterFunc(d, func() { b.halfOpen(gen) })
}

func (b *Breaker) halfOpen(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	if wordState(w) != StateOpen || wordGen(w) != gen || b.stopped {
		return
	}
	b.timer = nil
	b.word.Store(uint64(StateHalfOpen) | (gen+1)<<wordGenShift)
	b.transition(StateOpen, StateHalfOpen, b.clock.Now().UnixNano())
}

func (b *Breaker) probeDone(p Permit, o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	if wordState(w) != StateHalfOpen || w&wordProbe == 0 || wordGen(w) != wordGen(uint64(p)) {
		return // reset or forced meanwhile
	}
	switch o {
	case Success:
		now := b.clock.Now().UnixNano()
		b.closeLocked(now, StateClosed)
	case Failure:
		b.consec.Add(1)
		b.openLocked(b.clock.Now().UnixNano(), StateHalfOpen)
	default:
		b.word.Store(w &^ wordProbe)
	}
}

// closeLocked closes (or force-closes) the breaker and clears its counters.
func (b *Breaker) closeLocked(now int64, to State) {
	from := wordState(b.word.Load())
	gen := wordGen(b.word.Load()) + 1
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.consec.Store(0)
	b.resetWindow()
	b.closedAt = now
	b.word.Store(uint64(to) | gen<<wordGenShift)
	b.transition(from, to, now)
}

func (b *Breaker) resetWindow() {
	clear(b.buckets)
	b.pending.Store(0)
	b.lastFlush = 0
}

func (b *Breaker) transition(from, to State, now int64) {
	b.since = now
	if b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(from, to)
	}
	if b.onChange != nil {
		b.onChange(from, to, time.Unix(0, now))
	}
}

// probeNow makes an open breaker half-open at once and takes its probe; the
// router uses it when every endpoint is open (panic mode).
func (b *Breaker) probeNow() (Permit, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	switch wordState(w) {
	case StateOpen:
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		nw := uint64(StateHalfOpen) | (wordGen(w)+1)<<wordGenShift | wordProbe
		b.word.Store(nw)
		b.transition(StateOpen, StateHalfOpen, b.clock.Now().UnixNano())
		return Permit(nw), true
	case StateHalfOpen:
		// Allow takes the probe without the lock: compete with it fairly.
		if w&wordProbe == 0 && b.word.CompareAndSwap(w, w|wordProbe) {
			return Permit(w | wordProbe), true
		}
	}
	return 0, false
}

// ForceOpen makes the breaker refuse every call until ForceClose or Reset.
func (b *Breaker) ForceOpen() {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.word.Store(uint64(StateForcedOpen) | (wordGen(w)+1)<<wordGenShift)
	b.transition(wordState(w), StateForcedOpen, b.clock.Now().UnixNano())
}

// ForceClose makes the breaker let every call through and never open until
// ForceOpen or Reset.
func (b *Breaker) ForceClose() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeLocked(b.clock.Now().UnixNano(), StateForcedClosed)
}

// Reset closes the breaker, clears its counters and restarts its cool-down backoff.
func (b *Breaker) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bo.Reset()
	b.closeLocked(b.clock.Now().UnixNano(), StateClosed)
	b.closedAt = 0
}

// BreakerSnapshot is the state of a breaker at one moment.
type BreakerSnapshot struct {
	State               State
	ConsecutiveFailures int
	Since               time.Time // when the current state began
	OpenUntil           time.Time // end of the cool-down; zero unless open
	WindowFailures      int       // failures in the sliding window
	WindowRequests      int       // calls counted in the sliding window
}

// Snapshot returns the breaker's state and counters.
func (b *Breaker) Snapshot() BreakerSnapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.word.Load()
	s := BreakerSnapshot{
		State:               wordState(w),
		ConsecutiveFailures: int(b.consec.Load()),
		Since:               time.Unix(0, b.since),
	}
	if s.State == StateOpen {
		s.OpenUntil = time.Unix(0, b.openUntil)
	}
	if w&wordCounting != 0 {
		f, total := b.windowCounts(b.clock.Now().UnixNano() / b.width)
		s.WindowFailures, s.WindowRequests = int(f), int(total+b.pending.Load())
	}
	return s
}

// stop cancels the cool-down timer for good; the engine calls it on Close.
func (b *Breaker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}
