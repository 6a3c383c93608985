package cache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Deferred answers (Put with Deferred): the caller returns once the record is
// handed to the writer; the writer waits up to Config.DeferredFlush for more
// of them and commits them together (one transaction, one fsync), or with the
// next durable write if one comes first. A stored answer is a cache entry:
// losing the last few in a crash costs an extra call to the platform, nothing
// more, while the caller of a live call no longer waits for an fsync.

// maxDeferred bounds the deferred answers waiting for their commit: past it,
// a deferred Put waits for its commit like a durable one (back-pressure, so a
// slow disk or an unreachable backend cannot make memory grow without bound).
const maxDeferred = 4096

// BatchBackend is an optional capability of a Backend: PutBatch stores
// records of several buckets of one tenant in one transaction, one commit,
// each unless the record it would replace has a later T1 (as PutNewer: a
// deferred answer written late never replaces a newer one another instance
// stored meanwhile). The Store uses it to write deferred answers together; a
// Backend without it gets them one PutNewer at a time, in the background.
// recs never holds two records with the same bucket and key.
type BatchBackend interface {
	PutBatch(ctx context.Context, tenant string, recs []BucketRecord) error
}

// BucketRecord is a Record with the bucket it goes in (see BatchBackend).
type BucketRecord struct {
	Bucket string
	Record
}

// Deferred makes Put return as soon as the answer is handed to the Store's
// writer, before it is on disk: the writer commits deferred answers together
// within Config.DeferredFlush (or with the next durable write, or at Close),
// so a caller pays for no fsync. Get returns the answer at once. Meant for
// answers that can be fetched again (a cache entry): a crash of the process
// before the commit loses them; a failed commit is logged (without personal
// data) and counted in Stats.DeferredFailed, never silently dropped. Every
// other write (Enqueue, durable Put, Delete) keeps its committed-when-returned
// durability, and commits the deferred answers waiting before it.
func Deferred() PutOption { return func(o *putOptions) { o.deferred = true } }

// deferQueue holds the writes handed to the writer that nobody waits for.
type deferQueue struct {
	mu     sync.Mutex
	ops    []*writeOp // file: in hand-off order
	closed bool       // set by the writer's last flush: later hand-offs get ErrClosed
	// armed: the writer has been signalled since it last took the queue, so
	// it will take what is handed off now; a hand-off signals only when not
	// armed, which spares a goroutine wake-up per deferred Put (one per live
	// call) while the writer lingers.
	armed bool
	sig   chan struct{}
	wakes atomic.Uint64 // signals sent (tests count the writer's wake-ups)
}

func newDeferQueue() deferQueue { return deferQueue{sig: make(chan struct{}, 1)} }

func (q *deferQueue) signal() {
	q.wakes.Add(1)
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

// writeDeferred hands op to the committer without waiting for its commit.
// full reports that too many are waiting: the caller then writes durably.
func (s *Store) writeDeferred(op *writeOp) (full bool, err error) {
	q := &s.deferq
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, ErrClosed
	}
	if len(q.ops) >= maxDeferred {
		q.mu.Unlock()
		return true, nil
	}
	op.deferred = true
	q.ops = append(q.ops, op)
	s.deferInFlight.Add(1)
	wake := !q.armed
	q.armed = true
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return false, nil
}

// takeDeferred returns (and forgets) the deferred writes waiting; last marks
// the queue closed.
func (s *Store) takeDeferred(dst []*writeOp, last bool) []*writeOp {
	q := &s.deferq
	q.mu.Lock()
	dst = append(dst, q.ops...)
	clear(q.ops)
	q.ops = q.ops[:0]
	q.armed = false
	q.closed = q.closed || last
	q.mu.Unlock()
	return dst
}

// deferredFailed counts and logs a deferred write that did not commit.
func (s *Store) deferredFailed(n int, fn string, err error) {
	s.deferFailures.Add(uint64(n))
	s.log.Error("cache: deferred answers not stored", zap.String("function", fn), zap.Int("count", n), zap.Error(err))
}

// putDeferredFile seals the answer and hands it to the committer; the memory
// LRU gets it at once (and again when it commits, in commit order with the
// other writes, so memory ends as the file does).
func (s *Store) putDeferredFile(ctx context.Context, f *function, key string, me *memEntry, dk, rec []byte) error {
	mk := memKey{f.name, key}
	after := func() {
		s.memMu.Lock()
		s.gen.Add(1)
		s.memAdd(mk, me)
		s.memMu.Unlock()
	}
	fn := func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(f.bucket)
		if err != nil {
			return err
		}
		return b.Put(dk, rec)
	}
	op := &writeOp{fn: fn, after: after, fname: f.name}
	s.memMu.Lock()
	full, err := s.writeDeferred(op)
	if err == nil && !full {
		s.gen.Add(1)
		s.memAdd(mk, me)
	}
	s.memMu.Unlock()
	if err != nil {
		return err
	}
	if full {
		return s.write(ctx, fn, after)
	}
	return nil
}

// pendingAnswer is a deferred answer waiting for its write to the Backend.
type pendingAnswer struct {
	mk     memKey
	bucket string
	rec    Record
	me     *memEntry
}

// putDeferredShared keeps the sealed answer where Get finds it and lets the
// flusher write it. Durable Puts and Deletes of the same answer drop it
// (under flushMu, so a flush in progress finishes first), so it never
// overwrites what was written after it.
func (s *Store) putDeferredShared(ctx context.Context, f *function, key string, r Record, me *memEntry) error {
	p := &pendingAnswer{mk: memKey{f.name, key}, bucket: string(f.bucket), rec: r, me: me}
	s.pendMu.Lock()
	if s.pendClosed {
		s.pendMu.Unlock()
		return ErrClosed
	}
	if _, replaces := s.pend[p.mk]; !replaces && len(s.pend) >= maxDeferred {
		s.pendMu.Unlock()
		return s.putSharedNow(ctx, f, key, r)
	}
	s.pend[p.mk] = p
	wake := !s.pendArmed
	s.pendArmed = true
	s.pendMu.Unlock()
	if wake {
		s.deferq.signal()
	}
	return nil
}

// pendingShared returns the deferred answer of mk still waiting, if any.
func (s *Store) pendingShared(mk memKey) *memEntry {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if p := s.pend[mk]; p != nil {
		return p.me
	}
	return nil
}

// dropPending forgets a waiting deferred answer; called with flushMu read-held.
func (s *Store) dropPending(mk memKey) {
	s.pendMu.Lock()
	delete(s.pend, mk)
	s.pendMu.Unlock()
}

// deferLoop writes the deferred answers to the Backend: after
// Config.DeferredFlush from the first one waiting, all of them together.
func (s *Store) deferLoop() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	var linger <-chan time.Time
	for {
		select {
		case <-s.deferq.sig:
			if linger == nil {
				t.Reset(s.cfg.DeferredFlush)
				linger = t.C
			}
		case <-linger:
			linger = nil
			s.flushShared(false)
		case <-s.done:
			t.Stop()
			s.flushShared(true)
			return
		}
	}
}

// flushShared writes every waiting deferred answer, in one PutBatch when the
// Backend offers it. last (at Close) refuses later deferred Puts.
func (s *Store) flushShared(last bool) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.pendMu.Lock()
	batch := make([]*pendingAnswer, 0, len(s.pend))
	for _, p := range s.pend {
		batch = append(batch, p)
	}
	s.pendArmed = false
	s.pendClosed = s.pendClosed || last
	s.pendMu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failed := map[string]int{}
	var lastErr error
	if bb, ok := s.be.(BatchBackend); ok {
		recs := make([]BucketRecord, len(batch))
		for i, p := range batch {
			recs[i] = BucketRecord{Bucket: p.bucket, Record: p.rec}
		}
		if err := bb.PutBatch(ctx, s.cfg.Tenant, recs); err != nil {
			lastErr = err
			for _, p := range batch {
				failed[p.mk.fn]++
			}
		}
	} else {
		for _, p := range batch {
			if _, err := s.be.PutNewer(ctx, s.cfg.Tenant, p.bucket, p.rec); err != nil {
				lastErr = err
				failed[p.mk.fn]++
			}
		}
	}
	// Whether written or failed (counted and logged below), they leave the
	// waiting set, unless a newer deferred Put replaced them meanwhile.
	s.pendMu.Lock()
	for _, p := range batch {
		if s.pend[p.mk] == p {
			delete(s.pend, p.mk)
		}
	}
	s.pendMu.Unlock()
	for fn, n := range failed {
		s.deferredFailed(n, fn, lastErr)
	}
}

// deferredPending counts the deferred answers not yet committed.
func (s *Store) deferredPending() int {
	if s.be != nil {
		s.pendMu.Lock()
		defer s.pendMu.Unlock()
		return len(s.pend)
	}
	return int(s.deferInFlight.Load())
}

// Flush commits the answers stored with Deferred that are waiting, and
// returns once they are on disk (or in the Backend). It reports an error if
// any of them failed (they are also counted in Stats.DeferredFailed).
// Close flushes too; Flush is for a caller that wants a point of durability
// without closing (before a planned stop of the machine, say).
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	before := s.deferFailures.Load()
	if s.be != nil {
		s.flushShared(false)
	} else if err := s.write(ctx, func(*bolt.Tx) error { return nil }, nil); err != nil {
		return err
	}
	if n := s.deferFailures.Load() - before; n > 0 {
		return fmt.Errorf("cache: %d deferred answers not stored (see the log)", n)
	}
	return nil
}
