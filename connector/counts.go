package connector

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehgate/ehgate/cache"
)

// StoreCountsMaxAge bounds how old the store's counts in Status may be: Status.Cache (every
// record is read to count them, or the shared database asked) and, with a shared
// StoreBackend, Status.Outbox's DeadLetters and OldestAge (the database asked; a local
// store's are counters, always exact; Pending is the outbox's own figure, which the cache
// package keeps about a second fresh). Status, read at every metrics
// scrape and console refresh, counts at most once per StoreCountsMaxAge by the client's
// clock, whatever the scrape rate. Changes this client makes show at the next Status all the
// same: a write queued, replayed, requeued or discarded (the outbox's figures), an Import or
// a Purge (the store's counts). Answers stored by live calls, and changes other clients of a
// fleet make, show within StoreCountsMaxAge.
const StoreCountsMaxAge = 10 * time.Second

// counted keeps a value that is costly to compute for at most StoreCountsMaxAge, or until
// marked stale. Safe for concurrent use: one caller computes at a time, the others meanwhile
// get the last value (when there is one).
type counted[T any] struct {
	mu    sync.Mutex
	last  atomic.Pointer[countedValue[T]]
	stale atomic.Bool
}

type countedValue[T any] struct {
	at time.Time
	v  T
}

// markStale makes the next get compute again.
func (k *counted[T]) markStale() { k.stale.Store(true) }

// get returns the value and when it was computed: the last one if younger than
// StoreCountsMaxAge at now and not marked stale, else compute's (ok false: compute failed,
// the last value stays, or the zero value when there is none).
func (k *counted[T]) get(now time.Time, compute func() (T, bool)) (T, time.Time) {
	last := k.last.Load()
	if last != nil && fresh(last.at, now) && !k.stale.Load() {
		return last.v, last.at
	}
	if !k.mu.TryLock() {
		if last != nil {
			return last.v, last.at // another Status is counting: the last counts meanwhile
		}
		k.mu.Lock()
	}
	defer k.mu.Unlock()
	if cur := k.last.Load(); cur != last && cur != nil && fresh(cur.at, now) && !k.stale.Load() {
		return cur.v, cur.at // counted while this one waited
	}
	k.stale.Store(false) // before counting: a change made meanwhile marks it again
	v, ok := compute()
	if !ok {
		if last != nil {
			return last.v, last.at
		}
		return v, time.Time{}
	}
	k.last.Store(&countedValue[T]{at: now, v: v})
	return v, now
}

func fresh(at, now time.Time) bool {
	age := now.Sub(at)
	return age >= 0 && age < StoreCountsMaxAge
}

// outboxCounts are the outbox's figures that cost a database query with a shared backend.
type outboxCounts struct {
	dead   int
	oldest time.Duration // age of the oldest pending write when counted
}

// storeCounts returns the store's counts and the outbox's figures, counted at most once
// per StoreCountsMaxAge (see there), and when the older of the two was counted.
func (c *Client) storeCounts(now time.Time) (cache.Stats, OutboxStatus, time.Time) {
	stats, statsAt := c.statsCount.get(now, func() (cache.Stats, bool) {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		// Live answers are stored deferred (put): commit those waiting so that they are
		// counted; this runs at most once per StoreCountsMaxAge.
		_ = c.store.Flush(ctx)
		st, err := c.store.Stats(ctx)
		return st, err == nil
	})
	count := func() (outboxCounts, bool) {
		return outboxCounts{dead: c.outbox.DeadLetterCount(), oldest: c.outbox.OldestAge()}, true
	}
	out := OutboxStatus{Pending: c.outbox.Pending()}
	if c.cfg.StoreBackend == nil { // counters and one key read: exact every time
		ob, _ := count()
		out.DeadLetters, out.OldestAge = ob.dead, ob.oldest
		return stats, out, statsAt
	}
	ob, obAt := c.outboxCount.get(now, count)
	out.DeadLetters, out.OldestAge = ob.dead, ob.oldest
	if ob.oldest > 0 && !obAt.IsZero() {
		out.OldestAge += now.Sub(obAt) // the oldest write aged since it was counted
	}
	at := statsAt
	if obAt.Before(at) {
		at = obAt
	}
	return stats, out, at
}
