package bcp

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// This file holds what a Loader and a Poller share around their fetches: the
// OnChange registry, the PollStatus cell and the logging of fetch failures.

// subscribers is an OnChange registry: callbacks are called in subscription
// order, one call at a time, under mu, so that a callback added while a value
// is published sees either that value or the next, never both nor neither.
type subscribers[T any] struct {
	mu   sync.Mutex
	fns  map[int]func(T)
	next int
}

// add registers f and, when current reports a value, calls f with it at once.
// current is read under mu, as publish stores under mu.
func (s *subscribers[T]) add(f func(T), current func() (T, bool)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = map[int]func(T){}
	}
	id := s.next
	s.next++
	s.fns[id] = f
	if v, ok := current(); ok {
		f(v)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.fns, id)
	}
}

// publish runs store under mu and, when notify, calls every callback with v.
func (s *subscribers[T]) publish(store func(), v T, notify bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	store()
	if !notify {
		return
	}
	for id := 0; id < s.next; id++ {
		if f, ok := s.fns[id]; ok {
			f(v)
		}
	}
}

// statusCell holds a PollStatus for concurrent readers.
type statusCell struct {
	mu sync.Mutex
	s  PollStatus
}

func (c *statusCell) get() PollStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

// attempted records a fetch that started at start and ended with err.
func (c *statusCell) attempted(start time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.LastAttempt = start
	c.s.LastErr = err
}

// succeeded records the end of a fetch that left a good, current value.
func (c *statusCell) succeeded(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.LastSuccess = at
}

// finished records a fetch that started at start and ended at end with err,
// all at once (a success when err is nil).
func (c *statusCell) finished(start, end time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.LastAttempt = start
	c.s.LastErr = err
	if err == nil {
		c.s.LastSuccess = end
	}
}

// failureLog keeps a source that stays unreachable from flooding the log: a
// failure is logged at warn when it starts or its message changes, at debug
// while it repeats, and the recovery at info. Guarded by the owner's fetchMu.
type failureLog struct {
	last string // message of the failure last logged; "" when the last fetch worked
}

// failed logs err: warn when new, debug when a repeat.
func (f *failureLog) failed(log *zap.Logger, err error, warn, debug string) {
	if msg := err.Error(); msg != f.last {
		log.Warn(warn, zap.Error(err))
		f.last = msg
	} else {
		log.Debug(debug, zap.Error(err))
	}
}

// reached notes a fetch that reached the source, logging info when it ends a
// failure.
func (f *failureLog) reached(log *zap.Logger, info string) {
	if f.last != "" {
		log.Info(info)
	}
	f.last = ""
}
