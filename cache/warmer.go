package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// WarmConfig configures a Warmer.
type WarmConfig struct {
	// Function is the priority function whose answers are kept fresh. Required.
	Function string
	// Keys is the initial set of keys (for example the patients of today's
	// deliveries). Change it later with SetKeys, Add and Remove.
	Keys []string
	// Refresh fetches the live answer for key and stores it, typically the
	// vendor's own client call, which stores its answers in this Store (or
	// a function that calls Store.Put). Required. It must be safe to call from
	// the Warmer's goroutine; it is never called concurrently by one Warmer.
	Refresh func(ctx context.Context, key string) error
	// MaxAge is the age from which a key's answer is refreshed (a missing,
	// expired or older answer is refreshed; so is one whose NotAfter comes
	// within MaxAge). 0 = half the function's Policy.Fresh.
	MaxAge time.Duration
	// Interval is how often the whole set is checked. 0 = 15 minutes.
	Interval time.Duration
	// Rate is the most Refresh calls per second. 0 = 1 per second.
	Rate rate.Limit
	// Burst is how many Refresh calls may go at once before Rate applies. 0 = 1.
	Burst int
	// Timeout bounds one Refresh call. 0 = 30 seconds.
	Timeout time.Duration
}

// WarmStats counts what a Warmer did since it started.
type WarmStats struct {
	Rounds    uint64 // passes over the key set
	Refreshed uint64 // Refresh calls that succeeded
	Failed    uint64 // Refresh calls that failed
	UpToDate  uint64 // keys found young enough, not refreshed
}

// Warmer keeps the answers of a chosen set of keys fresh by calling a
// refresh function on an interval, at a limited rate, as offline-capable
// applications refresh every few hours. It is owned by its Store: Close (or
// the Store's Close) stops it. Its methods are safe for concurrent use.
type Warmer struct {
	s       *Store
	f       *function
	cfg     WarmConfig
	limiter *rate.Limiter

	mu   sync.Mutex
	keys map[string]struct{}

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	rounds, refreshed, failed, upToDate atomic.Uint64
}

// Warm starts a Warmer for cfg.Function. Its first round starts at once.
func (s *Store) Warm(cfg WarmConfig) (*Warmer, error) {
	f, err := s.function(cfg.Function)
	if err != nil {
		return nil, err
	}
	if cfg.Refresh == nil {
		return nil, fmt.Errorf("%w: WarmConfig.Refresh is nil", ErrInvalid)
	}
	if cfg.MaxAge < 0 || cfg.Interval < 0 || cfg.Rate < 0 || cfg.Burst < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: WarmConfig has a negative field", ErrInvalid)
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = f.policy.Fresh / 2
	}
	if cfg.Interval == 0 {
		cfg.Interval = 15 * time.Minute
	}
	if cfg.Rate == 0 {
		cfg.Rate = 1
	}
	if cfg.Burst == 0 {
		cfg.Burst = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Warmer{
		s: s, f: f, cfg: cfg, limiter: rate.NewLimiter(cfg.Rate, cfg.Burst),
		keys: map[string]struct{}{}, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
	}
	for _, k := range cfg.Keys {
		w.keys[k] = struct{}{}
	}
	s.warmMu.Lock()
	if s.closed.Load() {
		s.warmMu.Unlock()
		cancel()
		return nil, ErrClosed
	}
	s.warmers[w] = struct{}{}
	s.warmMu.Unlock()
	go w.run(ctx)
	return w, nil
}

// SetKeys replaces the set of keys kept fresh.
func (w *Warmer) SetKeys(keys []string) {
	w.mu.Lock()
	w.keys = make(map[string]struct{}, len(keys))
	for _, k := range keys {
		w.keys[k] = struct{}{}
	}
	w.mu.Unlock()
}

// Add adds keys to the set.
func (w *Warmer) Add(keys ...string) {
	w.mu.Lock()
	for _, k := range keys {
		w.keys[k] = struct{}{}
	}
	w.mu.Unlock()
}

// Remove removes keys from the set.
func (w *Warmer) Remove(keys ...string) {
	w.mu.Lock()
	for _, k := range keys {
		delete(w.keys, k)
	}
	w.mu.Unlock()
}

// Keys returns the set, sorted.
func (w *Warmer) Keys() []string {
	w.mu.Lock()
	ks := make([]string, 0, len(w.keys))
	for k := range w.keys {
		ks = append(ks, k)
	}
	w.mu.Unlock()
	slices.Sort(ks)
	return ks
}

// RefreshNow starts a round now instead of at the next interval (at most one
// round is ever pending).
func (w *Warmer) RefreshNow() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stats returns the Warmer's counters.
func (w *Warmer) Stats() WarmStats {
	return WarmStats{Rounds: w.rounds.Load(), Refreshed: w.refreshed.Load(), Failed: w.failed.Load(), UpToDate: w.upToDate.Load()}
}

// Close stops the Warmer and waits for its goroutine (a Refresh call in
// progress sees its context cancelled).
func (w *Warmer) Close() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
		w.s.warmMu.Lock()
		delete(w.s.warmers, w)
		w.s.warmMu.Unlock()
	})
}

func (w *Warmer) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.round(ctx)
		select {
		case <-t.C:
		case <-w.kick:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Warmer) round(ctx context.Context) {
	w.rounds.Add(1)
	for _, k := range w.Keys() {
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		_, still := w.keys[k]
		w.mu.Unlock()
		if !still || !w.due(ctx, k) {
			if still {
				w.upToDate.Add(1)
			}
			continue
		}
		if err := w.limiter.Wait(ctx); err != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		err := w.cfg.Refresh(rctx, k)
		cancel()
		switch {
		case err == nil:
			w.refreshed.Add(1)
		case ctx.Err() != nil:
			return
		default:
			w.failed.Add(1)
			w.s.log.Debug("cache: warm-up refresh failed", zap.String("function", w.f.name), zap.Error(err))
		}
	}
}

// due reports whether key's answer is missing, too old, or about to end.
func (w *Warmer) due(ctx context.Context, key string) bool {
	e, err := w.s.Get(ctx, w.f.name, key)
	if err != nil {
		return !errors.Is(err, ErrClosed)
	}
	if e.Age >= w.cfg.MaxAge {
		return true
	}
	return !e.NotAfter.IsZero() && e.NotAfter.Sub(w.s.now()) < w.cfg.MaxAge
}
