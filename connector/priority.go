package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
)

// ErrFallback is the cause given when a service is in forced fallback (status feed, operator,
// drill): the network was not tried.
var ErrFallback = errors.New("connector: service in fallback mode")

// ErrNotCached says the platform could not answer and the local store held no usable answer.
var ErrNotCached = errors.New("connector: no usable cached answer")

// FallbackError says that neither the platform nor the local store could answer. Err is the
// platform's failure (a *bcp.UnavailableError naming every endpoint tried, a token error, or
// ErrFallback when the network was not tried); Cache why the store could not answer
// (cache.ErrNotFound, cache.ErrExpired). It names the service, never the patient.
type FallbackError struct {
	Service string
	Err     error
	Cache   error
}

// Error names the service and both failures, never the patient.
func (e *FallbackError) Error() string {
	return fmt.Sprintf("connector: %s: no answer: %v; local store: %v", e.Service, e.Err, e.Cache)
}

// Unwrap returns ErrNotCached, the platform's error and the store's.
func (e *FallbackError) Unwrap() []error { return []error{ErrNotCached, e.Err, e.Cache} }

// stored is what the local store keeps for one answer of a priority function.
type stored[A, Q any] struct {
	Request  Q
	Answer   A
	Endpoint string
	AsOf     time.Time
}

// outcome is an answer with its origin.
type outcome[A any] struct {
	Answer   A
	Source   Source
	AsOf     time.Time
	Degraded bool
	Endpoint string
	// storeRead is the result of the store read of a call answered from the store alone
	// (forced fallback), reported in CallEnd instead of as a step.
	storeRead StoreRead
}

// memo keeps decoded answers in front of the store, so that fallback answers cost neither
// decryption nor decoding (the store's own LRU holds bytes). It is sharded so that many
// counters reading at once rarely meet on a lock; a full shard drops an arbitrary entry.
// With a store shared by a fleet, an entry is served for at most reuse after it was read
// from or written to the store: then the store is read again, so that a newer answer
// another instance stored is served here too (FleetMemoMaxAge).
type memo struct {
	seed   maphash.Seed
	per    int
	reuse  time.Duration // 0 = an entry stays good until its answer's own bounds
	shards [memoShards]memoShard
}

// FleetMemoMaxAge bounds how long an instance of a fleet (Config.StoreBackend) serves an
// answer from its own memory before reading the shared store again: a newer answer another
// instance stored for the same request is served by this one at most FleetMemoMaxAge after
// it reached the store. The re-read is one query; if the store cannot answer, the answer in
// memory is served (availability first).
const FleetMemoMaxAge = 5 * time.Second

// memoShards spreads the memo's writers: each add copies its shard's map (at most
// size/memoShards entries).
const memoShards = 256

// memoShard is read without a lock and without writing shared memory (readers on several
// cores do not take a cache line from each other): its map is never changed, a writer
// replaces it by a changed copy.
type memoShard struct {
	m  atomic.Pointer[map[memoKey]memoEntry]
	mu sync.Mutex // held by writers
}

type memoKey struct{ function, key string }

type memoEntry struct {
	value    any
	storedAt time.Time
	notAfter time.Time
	checked  time.Time // when it was read from or written to the store (client's clock)
}

func newMemo(size int, reuse time.Duration) *memo {
	m := &memo{seed: maphash.MakeSeed(), per: max(1, size/memoShards), reuse: reuse}
	empty := map[memoKey]memoEntry{}
	for i := range m.shards {
		m.shards[i].m.Store(&empty)
	}
	return m
}

func (m *memo) shard(k memoKey) *memoShard {
	return &m.shards[maphash.String(m.seed, k.key)%memoShards]
}

func (m *memo) get(k memoKey) (memoEntry, bool) {
	e, ok := (*m.shard(k).m.Load())[k]
	return e, ok
}

func (m *memo) add(k memoKey, e memoEntry) {
	s := m.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	_, replaces := old[k]
	n := make(map[memoKey]memoEntry, len(old)+1)
	drop := !replaces && len(old) >= m.per // a full shard drops an arbitrary entry
	for key, v := range old {
		if drop {
			drop = false
			continue
		}
		n[key] = v
	}
	n[k] = e
	s.m.Store(&n)
}

// clear drops every decoded answer (after the store changed under it: import, purge).
func (m *memo) clear() {
	empty := map[memoKey]memoEntry{}
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.m.Store(&empty)
		s.mu.Unlock()
	}
}

func (m *memo) remove(k memoKey) {
	s := m.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if _, ok := old[k]; !ok {
		return
	}
	n := make(map[memoKey]memoEntry, len(old))
	for key, v := range old {
		if key != k {
			n[key] = v
		}
	}
	s.m.Store(&n)
}

// priority describes one priority function.
type priority[A, Q any] struct {
	service, function string
	policy            Policy
	key               string
	request           Q
	// live asks the platform for request (a method expression: building a priority
	// allocates no closure).
	live func(c *Client, ctx context.Context, request Q) (A, string, error)
	// now is when the call began by the client's clock (zero: read the clock when needed);
	// a forced fallback's store read uses it rather than read the clock again.
	now time.Time
	// encode writes the stored answer's JSON (as encoding/json does, faster); nil = json.Marshal.
	encode func([]byte, stored[A, Q]) ([]byte, error)
}

// lookup returns the stored answer of p if it may still be served (age within the policy,
// not past its own NotAfter).
func lookup[A, Q any](c *Client, ctx context.Context, function, key string, maxAge time.Duration) (stored[A, Q], cache.Entry, error) {
	if c.obs != nil {
		step := StepInfo{Kind: StepStoreRead, Service: serviceOf(function)}
		sctx, start := c.stepStart(ctx, step)
		s, e, err := lookupStored[A, Q](c, sctx, function, key, maxAge, time.Time{})
		c.stepEnd(sctx, step, start, err)
		return s, e, err
	}
	return lookupStored[A, Q](c, ctx, function, key, maxAge, time.Time{})
}

// lookupStored is lookup without the observer: memory first, then the store. now is the
// time by the client's clock (zero: read it).
func lookupStored[A, Q any](c *Client, ctx context.Context, function, key string, maxAge time.Duration, now time.Time) (stored[A, Q], cache.Entry, error) {
	if now.IsZero() {
		now = c.clock.Now()
	}
	mk := memoKey{function, key}
	m, inMemo := c.memo.get(mk)
	if inMemo {
		if (maxAge > 0 && now.Sub(m.storedAt) >= maxAge) || (!m.notAfter.IsZero() && !now.Before(m.notAfter)) {
			c.memo.remove(mk)
			inMemo = false
		} else if c.memo.reuse <= 0 || now.Sub(m.checked) < c.memo.reuse {
			return m.value.(stored[A, Q]), cache.Entry{StoredAt: m.storedAt, NotAfter: m.notAfter, Age: now.Sub(m.storedAt)}, nil
		}
		// A fleet's entry due for a check: the shared store may hold a newer answer.
	}
	if c.store == nil {
		return stored[A, Q]{}, cache.Entry{}, c.storeErr
	}
	e, err := c.store.Get(ctx, function, key)
	if err != nil {
		gone := errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrExpired)
		if inMemo && !gone {
			// The shared store could not say (unreachable, or the read's time ran out): the
			// answer in memory is still within its bounds.
			return m.value.(stored[A, Q]), cache.Entry{StoredAt: m.storedAt, NotAfter: m.notAfter, Age: now.Sub(m.storedAt)}, nil
		}
		if inMemo {
			c.memo.remove(mk) // gone from the store (deleted, purged, or unreadable): so from memory
		}
		return stored[A, Q]{}, e, err
	}
	if maxAge > 0 && e.Age >= maxAge {
		return stored[A, Q]{}, e, &cache.ExpiredError{Function: function, StoredAt: e.StoredAt, Age: e.Age, Until: e.StoredAt.Add(maxAge)}
	}
	var s stored[A, Q]
	if err := json.Unmarshal(e.Value, &s); err != nil {
		c.log.Error("connector: stored answer unreadable, ignored", zap.String("function", function), zap.Error(err))
		return s, e, fmt.Errorf("%w: stored answer unreadable", cache.ErrNotFound)
	}
	c.memo.add(mk, memoEntry{value: s, storedAt: e.StoredAt, notAfter: e.NotAfter, checked: now})
	return s, e, nil
}

// put stores a live answer (in the background when the caller's context is done), written by
// encode (nil = json.Marshal).
func put[A, Q any](c *Client, ctx context.Context, function, key string, s stored[A, Q], notAfter time.Time,
	encode func([]byte, stored[A, Q]) ([]byte, error)) {
	if c.store == nil {
		return // no local store: said once at New and in Status
	}
	var raw []byte
	var err error
	if encode != nil {
		raw, err = encode(make([]byte, 0, 1024), s)
	} else {
		raw, err = json.Marshal(s)
	}
	if err != nil {
		c.log.Error("connector: answer not stored", zap.String("function", function), zap.Error(err))
		return
	}
	// A stored answer is a cache entry: losing the last ones in a crash costs a live call,
	// so the caller does not wait for the fsync (the store commits them together).
	opts := []cache.PutOption{cache.StoredAt(s.AsOf), cache.Deferred()}
	if !notAfter.IsZero() {
		opts = append(opts, cache.NotAfter(notAfter))
	}
	step := StepInfo{Kind: StepStoreWrite, Service: serviceOf(function)}
	sctx, start := c.stepStart(ctx, step)
	// The caller's cancellation must not cut the write; its values matter only to observers.
	pctx := context.Background()
	if c.obs != nil {
		pctx = context.WithoutCancel(sctx)
	}
	err = c.store.Put(pctx, function, key, raw, opts...)
	c.stepEnd(sctx, step, start, err)
	if err != nil {
		c.log.Error("connector: answer not stored", zap.String("function", function), zap.Error(err))
		return
	}
	c.memo.add(memoKey{function, key}, memoEntry{value: s, storedAt: s.AsOf, notAfter: notAfter, checked: s.AsOf})
}

// fromStore serves p from the local store; the read is an observed step unless folded (the
// call is the read alone: its result goes into the call's CallEnd).
func fromStore[A, Q any](c *Client, ctx context.Context, p priority[A, Q], degraded, folded bool) (outcome[A], error) {
	if p.policy.NoStore {
		return outcome[A]{}, fmt.Errorf("%w: the policy of %s stores nothing", cache.ErrNotFound, p.service)
	}
	maxAge := p.policy.MaxAge
	if ttl := c.listTTL(p.service); ttl > 0 && (maxAge <= 0 || ttl < maxAge) {
		maxAge = ttl // the service list's Expiry bounds how long an answer stays usable
	}
	// The caller's deadline may be what failed the live call: the local read still runs.
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	var s stored[A, Q]
	var err error
	if folded {
		s, _, err = lookupStored[A, Q](c, ctx, p.function, p.key, maxAge, p.now)
	} else {
		s, _, err = lookup[A, Q](c, ctx, p.function, p.key, maxAge)
	}
	if err != nil {
		return outcome[A]{}, err
	}
	return outcome[A]{Answer: s.Answer, Source: SourceCache, AsOf: s.AsOf, Degraded: degraded}, nil
}

// run is the way a priority call travels (runCall), observed when the client has observers.
func run[A, Q any](c *Client, ctx context.Context, p priority[A, Q]) (outcome[A], error) {
	if c.obs == nil {
		return runCall(c, ctx, p)
	}
	start := p.now // read when the request was checked: one clock read less per call
	if start.IsZero() {
		start = c.clock.Now()
	}
	info := CallInfo{Operation: p.function, Service: p.service}
	ctx = c.obs.CallStarted(ctx, info)
	out, err := runCall(c, ctx, p)
	c.obs.CallEnded(ctx, info, CallEnd{Outcome: outcomeOf(out.Source, err), Mode: c.modes.current(p.service),
		Endpoint: out.Endpoint, Degraded: out.Degraded, Duration: c.since(start), Err: err, StoreRead: out.storeRead})
	return out, err
}

// runCall is the way a priority call travels: mode of the service (forced fallback answers
// from the store without a network attempt), the service list's cache strategy, the live
// call, storing a live answer, and the store when every endpoint failed.
func runCall[A, Q any](c *Client, ctx context.Context, p priority[A, Q]) (outcome[A], error) {
	// The call is registered without a context of its own: a forced fallback answers from
	// the store without waiting on the network, and its hot path allocates nothing here.
	if err := c.enter(); err != nil {
		return outcome[A]{}, err
	}
	defer c.calls.exit()
	if err := ctx.Err(); err != nil {
		return outcome[A]{}, err // the caller gave up before asking: nothing recorded
	}
	if c.modes.forced(p.service) {
		out, err := fromStore(c, ctx, p, true, true)
		out.storeRead = storeReadOf(err)
		if c.drills.running.Load() && c.drills.active(p.service) {
			shadow(c, p, out, err)
		} else if err == nil && !c.regular.has(p.key) {
			c.regular.record(p.service, p.key, regEntry{request: p.request, servedAsOf: out.AsOf, check: recheck(c, p, out)})
		}
		if err != nil {
			return out, &FallbackError{Service: p.service, Err: ErrFallback, Cache: err}
		}
		return out, nil
	}
	ctx, release := c.cancellable(ctx) // from here the network may be waited on: Close ends it
	defer release()
	if ttl, ok := c.cacheFirst(p.service); ok && !p.policy.NoStore {
		if s, e, err := lookup[A, Q](c, ctx, p.function, p.key, p.policy.MaxAge); err == nil && e.Age < ttl {
			return outcome[A]{Answer: s.Answer, Source: SourceCache, AsOf: s.AsOf}, nil
		}
	}
	lctx, cancel, callerBudget := liveContext(ctx, p.policy.CallTimeout)
	ans, ep, err := p.live(c, lctx, p.request)
	budgetSpent := err != nil && lctx.Err() != nil && ctx.Err() == nil
	cancel()
	if e := c.ended(ctx); e != nil && err != nil {
		return outcome[A]{}, e // the caller's cancel or Close: no stored answer, nothing recorded
	}
	now := c.clock.Now()
	if err == nil {
		c.noteLive(p.service)
		if !p.policy.NoStore {
			put(c, ctx, p.function, p.key, stored[A, Q]{Request: p.request, Answer: ans, Endpoint: ep, AsOf: now}, time.Time{}, p.encode)
		}
		return outcome[A]{Answer: ans, Source: SourceLive, AsOf: now, Endpoint: ep}, nil
	}
	if !platformDown(err) {
		src := SourceNone // a refusal by fault or the caller's mistake: no answer
		if ep != "" {
			src = SourceLive // a business answer (ReturnCode, MessageFault): the platform's answer
		}
		return outcome[A]{Answer: ans, Source: src, AsOf: now, Endpoint: ep}, err
	}
	switch {
	case callerBudget || ctx.Err() != nil:
		// The caller's deadline, not the platform, ended the live part: it says nothing of
		// the service's mode. The store answers before that deadline.
	case budgetSpent:
		c.modes.update(p.service, CauseCallTimeout, func(s *serviceState) { s.unavailable = true })
	default:
		c.noteFailure(p.service, err)
	}
	out, cerr := fromStore(c, ctx, p, true, false)
	if cerr != nil {
		return out, &FallbackError{Service: p.service, Err: err, Cache: cerr}
	}
	c.log.Debug("connector: answered from the local store", zap.String("service", p.service), zap.Duration("age", now.Sub(out.AsOf)))
	if !c.regular.has(p.key) {
		c.regular.record(p.service, p.key, regEntry{request: p.request, servedAsOf: out.AsOf, check: recheck(c, p, out)})
	}
	return out, nil
}

// liveContext returns the context of a call's live part: it ends after callTimeout or
// shortly before the caller's deadline, whichever comes first (callerBudget reports the
// latter), so that the local store can still answer within the caller's deadline. The
// reserve is a tenth of the time left, at least 20 ms and at most 500 ms: a store read is a
// memory or bbolt read, far below that.
func liveContext(ctx context.Context, callTimeout time.Duration) (context.Context, context.CancelFunc, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		return lctx, cancel, false
	}
	left := time.Until(deadline)
	reserve := min(max(left/10, 20*time.Millisecond), 500*time.Millisecond)
	if left-reserve >= callTimeout {
		lctx, cancel := context.WithTimeout(ctx, callTimeout)
		return lctx, cancel, false
	}
	lctx, cancel := context.WithDeadline(ctx, deadline.Add(-reserve))
	return lctx, cancel, true
}

// listTTL is the service list's Expiry TTL of the service (0 = none).
func (c *Client) listTTL(service string) time.Duration {
	l := c.loader.Current()
	if l == nil {
		return 0
	}
	if svc, ok := l.Lookup(service); ok && svc.Cache != nil {
		return svc.Cache.TTL
	}
	return 0
}

// cacheFirst reports whether the service list asks to answer from the cache first
// (Strategy CACHE_FIRST), and for how long an answer counts as fresh: the list's Expiry TTL,
// or an hour when it gives none.
func (c *Client) cacheFirst(service string) (time.Duration, bool) {
	l := c.loader.Current()
	if l == nil {
		return 0, false
	}
	svc, ok := l.Lookup(service)
	if !ok || svc.Cache == nil || svc.Cache.Strategy != bcp.CacheCacheFirst {
		return 0, false
	}
	if svc.Cache.TTL > 0 {
		return svc.Cache.TTL, true
	}
	return time.Hour, true
}

// recheck returns the regularisation check of an answer served from the store: ask again
// live and say which fields differ.
func recheck[A, Q any](c *Client, p priority[A, Q], served outcome[A]) func(ctx context.Context) (Difference, error) {
	return func(ctx context.Context) (Difference, error) {
		ans, _, err := p.live(c, ctx, p.request)
		d := Difference{Service: p.service, Request: p.request, ServedAsOf: served.AsOf}
		if err != nil && platformDown(err) {
			return d, err
		}
		if err != nil {
			d.Fields = []string{"error: " + err.Error()}
			d.Live = nil
			return d, nil
		}
		d.Fields = diffFields(served.Answer, ans)
		d.Served, d.Live = served.Answer, ans
		if len(d.Fields) == 0 {
			d.Served, d.Live = nil, nil
		} else {
			put(c, ctx, p.function, p.key, stored[A, Q]{Request: p.request, Answer: ans, AsOf: c.clock.Now()}, time.Time{}, p.encode)
		}
		return d, nil
	}
}

// diffFields names the top-level fields of two answers of the same type that differ.
func diffFields(a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != reflect.Struct || va.Type() != vb.Type() {
		if reflect.DeepEqual(a, b) {
			return nil
		}
		return []string{"answer"}
	}
	var out []string
	for i := 0; i < va.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}
