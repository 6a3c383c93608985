package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// Message is a write queued in the Outbox.
type Message struct {
	// IdempotencyKey identifies the write; the receiving service deduplicates
	// on it, so a redelivery after a crash is harmless. Required, unique per
	// write. Enqueueing a key that is already pending adds nothing.
	IdempotencyKey string
	// Partition groups writes whose order matters (for example a hashed
	// patient identifier): Replay delivers the messages of one partition in the
	// order they were enqueued. "" is a partition like any other.
	Partition string
	// Service names where the write goes (for example "mycarenettarification:v1").
	Service string
	// Payload is the write itself, opaque to the Outbox.
	Payload []byte

	// Seq is the Outbox's sequence number of the message (set by Enqueue; the
	// order of delivery within a partition).
	Seq uint64
	// EnqueuedAt is when Enqueue stored it.
	EnqueuedAt time.Time
	// Attempts counts the failed sends so far (kept across Replay calls only
	// for dead letters).
	Attempts int
}

// DeadLetter is a message the receiver rejected permanently.
type DeadLetter struct {
	Message
	// Reason is the error the send function returned.
	Reason string
	// DeadAt is when it was set aside.
	DeadAt time.Time
}

// SendFunc delivers one message. It returns nil when the receiver accepted
// it (or had already accepted its idempotency key), an error wrapping
// ErrPermanent (see Permanent) when the receiver rejects it for good, and any
// other error for a transient failure to be retried.
type SendFunc func(ctx context.Context, m Message) error

// ReplayResult counts what a Replay call did.
type ReplayResult struct {
	Delivered    int // accepted and removed
	DeadLettered int // rejected permanently, moved to the dead letters
	Retries      int // transient failures retried
	Skipped      int // entries that failed authentication, left in place
}

// Outbox is the durable, encrypted queue of writes made while the platform
// is unreachable. It lives in its Store's file (or Backend) and is safe for
// concurrent use. Its logic is the same whatever keeps the queue (see queue):
// the file and a Backend differ only in what a record's seal is bound to and
// in how partitions are leased.
type Outbox struct {
	s         *Store
	pending   atomic.Int64 // with a Backend: the last known count, served when it does not answer
	dead      atomic.Int64 // with the file: the dead letters (counted in memory)
	oldest    atomic.Int64 // with a Backend: the last known enqueued-at of the oldest message
	countedAt atomic.Int64 // with a Backend: when pending was last read from it (since monoStart, +1; 0 = never)
	counting  atomic.Bool  // with a Backend: a call is reading pending from it
	replaying atomic.Bool
}

func newOutbox(s *Store) *Outbox { return &Outbox{s: s} }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func (o *Outbox) validate(m *Message) error {
	switch {
	case m.IdempotencyKey == "":
		return fmt.Errorf("%w: empty idempotency key", ErrInvalid)
	case len(m.IdempotencyKey) > MaxKeyBytes || len(m.Partition) > MaxKeyBytes || len(m.Service) > MaxKeyBytes:
		return fmt.Errorf("%w: idempotency key, partition or service over %d bytes", ErrTooLarge, MaxKeyBytes)
	case len(m.Payload) > o.s.cfg.MaxValueBytes:
		return fmt.Errorf("%w: payload of %d bytes (limit %d)", ErrTooLarge, len(m.Payload), o.s.cfg.MaxValueBytes)
	}
	return nil
}

// Enqueue stores m durably and encrypted: it returns only after the file is
// synced (with a Backend, committed). Concurrent calls share commits (group
// commit), so many producers pay for few syncs. If a message with the same
// idempotency key is already pending, Enqueue adds nothing and returns nil.
// The Seq, EnqueuedAt and Attempts fields of m are ignored.
// If ctx ends before the file is synced, Enqueue returns ctx.Err() at once;
// the message may still be stored afterwards, so the outcome is unknown:
// enqueue it again with the same idempotency key, which adds it only if it
// is not already pending.
func (o *Outbox) Enqueue(ctx context.Context, m Message) error {
	if err := o.validate(&m); err != nil {
		return err
	}
	s := o.s
	if s.closed.Load() {
		return ErrClosed
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	_, err = o.append(ctx, []draft{o.draft(ix, m, s.now().UnixNano())})
	return err
}

// append queues ds, counting what it added in the figure Pending serves
// with a Backend.
func (o *Outbox) append(ctx context.Context, ds []draft) ([]uint64, error) {
	seqs, err := o.s.q.append(ctx, ds)
	for _, seq := range seqs {
		if seq != 0 {
			o.pending.Add(1)
		}
	}
	return seqs, err
}

// dequeue removes a delivered (or, dead not nil, rejected) message.
func (o *Outbox) dequeue(ctx context.Context, seq uint64, dead *Record) error {
	removed, err := o.s.q.dequeue(ctx, seq, dead)
	if removed {
		o.pending.Add(-1)
	}
	return err
}

// draft prepares m for the queue, enqueued at enq: its partition and
// idempotency key as HMACs, and its seal.
func (o *Outbox) draft(ix *indexer, m Message, enq int64) draft {
	m.Attempts = 0
	pt := encodeMessage(&m, "", false)
	keys := o.s.keys
	return draft{
		part: ix.sum("partition", m.Partition),
		ik:   ix.sum("outbox", m.IdempotencyKey),
		enq:  enq,
		seal: func(k []byte) []byte { return keys.seal(kindOutbox, enq, 0, bucketOutbox, k, pt) },
	}
}

// Pending returns how many messages wait to be delivered.
// With a Config.Backend every instance's messages count, and the figure is
// cheap: the Store counts its own enqueues and deliveries as they happen and
// asks the backend again (one COUNT) when its figure is a second old, so
// other instances' enqueues and deliveries show within about a second (and
// one that raced with that count may be missed until the next one). If the
// backend does not answer, it returns the last known figure. Stats and
// OldestAge always ask the backend, and refresh this figure.
func (o *Outbox) Pending() int {
	if o.s.fb != nil {
		return o.s.fb.fq.count()
	}
	return o.pendingShared()
}

// sharedCountMaxAge bounds how old the queue size that Pending returns on a
// backend may be as to other instances' enqueues and deliveries: a call
// finding the figure older asks the backend again (one COUNT). The Store's
// own enqueues and deliveries are counted as they happen, so a Replay's
// progress or an Enqueue's effect costs no query.
const sharedCountMaxAge = time.Second

// monoStart anchors countedAt on the monotonic clock (staleness is about real
// time, whatever clock the Store was given).
var monoStart = time.Now()

// pendingShared returns the cached queue size, asking the backend when it is
// older than sharedCountMaxAge (one caller asks; the others meanwhile get the
// cached figure).
func (o *Outbox) pendingShared() int {
	at := o.countedAt.Load()
	if (at == 0 || time.Since(monoStart)-time.Duration(at) >= sharedCountMaxAge) && o.counting.CompareAndSwap(false, true) {
		defer o.counting.Store(false)
		n, _ := o.queueStats()
		return n
	}
	return max(0, int(o.pending.Load()))
}

// noteQueue records queue figures just read from the storage.
func (o *Outbox) noteQueue(n int, oldest int64) {
	o.pending.Store(int64(n))
	o.oldest.Store(oldest)
	o.countedAt.Store(int64(time.Since(monoStart)) + 1) // never 0: 0 means never counted
}

// DeadLetterCount returns how many messages were rejected permanently and set aside.
func (o *Outbox) DeadLetterCount() int {
	if o.s.fb != nil {
		return int(o.dead.Load())
	}
	return o.deadCountShared()
}

// OldestAge returns the age of the oldest pending message, 0 if none.
func (o *Outbox) OldestAge() time.Duration {
	_, t1 := o.queueStats()
	if t1 == 0 {
		return 0
	}
	return max(0, o.s.now().Sub(time.Unix(0, t1)))
}

// queueStats asks the queue for its size; on failure it returns the last
// figures it had (logged), since Pending and OldestAge cannot fail.
func (o *Outbox) queueStats() (int, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, oldest, _, err := o.s.q.stats(ctx)
	if err != nil {
		o.s.log.Warn("cache: outbox size unknown, store backend unavailable", zap.Error(err))
		return max(0, int(o.pending.Load())), o.oldest.Load()
	}
	o.noteQueue(n, oldest)
	return n, oldest
}

func (o *Outbox) deadCountShared() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	if err := o.s.scanShared(ctx, sharedDead, func(Record) error { n++; return nil }); err != nil {
		o.s.log.Warn("cache: dead letter count unknown, store backend unavailable", zap.Error(err))
		return int(o.dead.Load())
	}
	o.dead.Store(int64(n))
	return n
}

// DeadLetters returns the messages set aside, oldest first. Records that
// fail authentication are skipped (and counted in Stats).
func (o *Outbox) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if o.s.closed.Load() {
		return nil, ErrClosed
	}
	var out []DeadLetter
	err := o.s.scanShared(ctx, sharedDead, func(r Record) error {
		if d, err := o.openDead(r.Key, r.Value); err == nil {
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

func (o *Outbox) openDead(k, v []byte) (DeadLetter, error) {
	s := o.s
	if len(k) != 8 || len(v) > s.cfg.MaxValueBytes+4*MaxKeyBytes+maxReasonBytes+recordOverhead {
		return DeadLetter{}, s.tampered("outbox", fmt.Errorf("%w: malformed dead letter", ErrTampered))
	}
	h, pt, err := s.keys.open(v, bucketDead, k, kindDead)
	if err != nil {
		return DeadLetter{}, s.tampered("outbox", err)
	}
	m, reason, err := decodeMessage(bytes.Clone(pt), s.cfg.MaxValueBytes, true)
	if err != nil {
		return DeadLetter{}, s.tampered("outbox", fmt.Errorf("%w: %w", ErrTampered, err))
	}
	m.Seq = binary.BigEndian.Uint64(k)
	m.EnqueuedAt = time.Unix(0, h.t2)
	return DeadLetter{Message: m, Reason: reason, DeadAt: time.Unix(0, h.t1)}, nil
}

// openMessage authenticates and decodes a record of the file's queue (sealed
// to its sequence number k).
func (o *Outbox) openMessage(k, v []byte) (Message, error) {
	if len(k) != 8 {
		return Message{}, o.s.tampered("outbox", fmt.Errorf("%w: malformed outbox entry", ErrTampered))
	}
	return o.openSealed(Queued{Seq: binary.BigEndian.Uint64(k), Value: v}, k)
}

// openQueued authenticates and decodes a queued record.
func (o *Outbox) openQueued(q Queued) (Message, error) { return o.openSealed(q, o.s.q.aad(q)) }

func (o *Outbox) openSealed(q Queued, aad []byte) (Message, error) {
	s := o.s
	if len(q.Value) > s.cfg.MaxValueBytes+4*MaxKeyBytes+recordOverhead {
		return Message{}, s.tampered("outbox", fmt.Errorf("%w: malformed outbox entry", ErrTampered))
	}
	h, pt, err := s.keys.open(q.Value, bucketOutbox, aad, kindOutbox)
	if err != nil {
		return Message{}, s.tampered("outbox", err)
	}
	m, _, err := decodeMessage(pt, s.cfg.MaxValueBytes, false)
	if err != nil {
		return Message{}, s.tampered("outbox", fmt.Errorf("%w: %w", ErrTampered, err))
	}
	m.Seq = q.Seq
	m.EnqueuedAt = time.Unix(0, h.t1)
	return m, nil
}

// RequeueBackend is an optional capability of a Backend: Requeue moves a dead
// letter back to the queue in one transaction, so that a failure or a crash
// leaves it either dead or queued, never both. With a Backend without it,
// Outbox.Requeue appends then deletes (a crash in between leaves the message
// both queued and dead, never neither).
type RequeueBackend interface {
	Backend
	// Requeue removes the record deadKey of bucket "dead" and, in the same
	// transaction, appends q as Append does (not added, seq 0, when its
	// IdempotencyKey is already queued). removed is false, and nothing is
	// appended, when there was no such dead letter.
	Requeue(ctx context.Context, tenant string, deadKey []byte, q Queued) (seq uint64, removed bool, err error)
}

// requeuer is the queue's own way to requeue a dead letter in one
// transaction (the file; a RequeueBackend's queue).
type requeuer interface {
	requeue(ctx context.Context, deadKey []byte, d draft) (seq uint64, removed bool, err error)
}

// Requeue moves dead letter seq back to the end of the queue (with a new
// Seq and no attempts), for example after the vendor fixed what the receiver
// rejected. If its idempotency key is pending again meanwhile, the dead
// letter is just removed. With the file (and a RequeueBackend) both happen
// in one transaction; otherwise it is queued first and then removed from
// the dead letters: a crash in between leaves it both queued and dead,
// never neither.
func (o *Outbox) Requeue(ctx context.Context, seq uint64) error {
	s := o.s
	if s.closed.Load() {
		return ErrClosed
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	k := seqKey(seq)
	raw, err := s.rb.Get(ctx, s.cfg.Tenant, sharedDead, k)
	if err != nil {
		return err
	}
	if raw == nil {
		return ErrNotFound
	}
	d, err := o.openDead(k, raw)
	if err != nil {
		return err
	}
	dr := o.draft(ix, d.Message, s.now().UnixNano())
	if rq, ok := s.q.(requeuer); ok {
		seq, removed, err := rq.requeue(ctx, k, dr)
		switch {
		case err != nil:
			return err
		case !removed:
			return ErrNotFound // requeued or discarded meanwhile, by another call or instance
		case seq != 0:
			o.pending.Add(1)
		}
		if s.fb != nil {
			o.dead.Add(-1)
		}
		return nil
	}
	if _, err := o.append(ctx, []draft{dr}); err != nil {
		return err
	}
	return o.deleteDead(ctx, k)
}

// Discard deletes dead letter seq for good.
func (o *Outbox) Discard(ctx context.Context, seq uint64) error {
	if o.s.closed.Load() {
		return ErrClosed
	}
	return o.deleteDead(ctx, seqKey(seq))
}

func (o *Outbox) deleteDead(ctx context.Context, k []byte) error {
	ok, err := o.s.rb.Delete(ctx, o.s.cfg.Tenant, sharedDead, k)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	if o.s.fb != nil {
		o.dead.Add(-1)
	}
	return nil
}

// Replay delivers the pending messages through send and returns when none is
// left, when ctx ends, or when a partition's head message kept failing for
// Config.Outbox.MaxElapsed. Messages of one partition go strictly one after
// the other in Seq order, each removed (durably) once send accepted it;
// up to Config.Outbox.Concurrency partitions are delivered at the same time.
// A transient failure is retried after a jittered exponential backoff; a
// permanent one (ErrPermanent) moves the message to the dead letters with
// its reason. Messages enqueued during Replay are delivered too. Since a
// crash can come between an accepted send and the removal, a message may be
// sent again after a restart: the receiver must deduplicate on
// IdempotencyKey. An entry that fails authentication is never sent: it is
// skipped (ReplayResult.Skipped, Stats.AuthFailures) and left in place. Only
// one Replay runs at a time (ErrReplaying).
//
// With a Config.Backend, every instance of the fleet may Replay at the same
// time: each claims partitions nobody holds (a lease of OutboxConfig.Lease,
// renewed before each send) and Replay returns when it can claim no more, so
// messages of partitions held by other instances may still be pending when
// it returns. An instance that dies holding a partition leaves it to the
// others once its lease has passed; the message it was sending may then be
// sent twice, which the idempotency key makes harmless.
//
// Any storage: Replay claims partitions (up to Concurrency at a time) and
// delivers each, oldest queued entry first; the file's partitions are
// claimed in memory (one process has the file), without lease renewals or
// cut-off sends. A partition is delivered by one holder at a time; the
// lease is renewed before every send and every send is cut off after three
// quarters of the lease, so an instance that stalls or dies leaves the
// partition to another one after at most OutboxConfig.Lease, which resumes
// at the oldest message still queued.
func (o *Outbox) Replay(ctx context.Context, send SendFunc) (ReplayResult, error) {
	var res ReplayResult
	if !o.replaying.CompareAndSwap(false, true) {
		return res, ErrReplaying
	}
	defer o.replaying.Store(false)
	s := o.s
	if s.closed.Load() {
		return res, ErrClosed
	}
	if _, err := s.sharedIndex(ctx); err != nil {
		return res, err
	}
	if s.fb != nil {
		res.Skipped += s.fb.fq.unreadable() // found at Open, in no partition: kept, never sent
	}
	cfg := s.cfg.Outbox
	for {
		parts, err := s.q.claim(ctx, s.owner, cfg.Lease, cfg.Concurrency)
		if err != nil {
			return res, err
		}
		if len(parts) == 0 {
			return res, nil
		}
		var (
			mu       sync.Mutex
			firstErr error
			wg       sync.WaitGroup
			stuck    int
		)
		for _, p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r ReplayResult
				unreadable, err := o.replayPartition(ctx, send, p, &r)
				mu.Lock()
				defer mu.Unlock()
				res.Delivered += r.Delivered
				res.DeadLettered += r.DeadLettered
				res.Retries += r.Retries
				res.Skipped += r.Skipped
				if unreadable {
					stuck++
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return res, firstErr
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if stuck == len(parts) {
			// Every partition claimed still holds only entries that fail
			// authentication: claiming them again would go round for ever.
			return res, nil
		}
	}
}

// replayPartition delivers the queued messages of partition part while
// this Replay holds it, releasing it when done or giving up. unreadable
// reports that it ended with only entries that fail authentication left in
// the partition (they stay there as evidence).
func (o *Outbox) replayPartition(ctx context.Context, send SendFunc, part []byte, res *ReplayResult) (unreadable bool, err error) {
	s := o.s
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.q.release(rctx, s.owner, part); err != nil {
			s.log.Warn("cache: outbox lease not released; it expires by itself", zap.Error(err))
		}
	}()
	// With a Backend, sequence numbers are drawn before commit, so
	// instances' appends may become visible out of sequence order: an entry
	// can appear below one already read. A cursor past the last entry read
	// would leave it for a later round, behind its producer's later writes;
	// so after delivering a page the partition is read again from its head
	// (delivered entries are gone from it). Appends made after an Append
	// returned get higher numbers, so a read that sees a producer's write
	// also sees its earlier ones: each producer's writes go out in the order
	// they were acknowledged. The cursor only moves over entries set aside
	// as unreadable (skipped).
	var after uint64
	skipped := map[uint64]bool{}
	ls := &leaseState{}
	for {
		qs, err := s.q.entries(ctx, part, after, 64)
		if err != nil {
			return false, err
		}
		if len(qs) == 0 {
			return len(skipped) > 0, nil
		}
		delivered := false
		for _, q := range qs {
			if skipped[q.Seq] {
				continue
			}
			m, err := o.openQueued(q)
			if err != nil {
				skipped[q.Seq] = true
				res.Skipped++
				continue
			}
			held, err := o.deliver(ctx, send, q, m, part, ls, res)
			if err != nil || !held {
				return false, err
			}
			delivered = true
		}
		if delivered {
			after = 0
		} else {
			after = qs[len(qs)-1].Seq
		}
	}
}

// leaseState is when this Replay last renewed a partition's lease (the start
// of the renewal, on the local clock, so never later than the database's).
type leaseState struct{ renewed time.Time }

// deliver sends one queued message until it is accepted, rejected for
// good, or the partition's head gives up (MaxElapsed). held is false when the
// lease passed to another instance: it continues the partition.
func (o *Outbox) deliver(ctx context.Context, send SendFunc, q Queued, m Message, part []byte, ls *leaseState, res *ReplayResult) (held bool, err error) {
	s := o.s
	cfg := s.cfg.Outbox
	shared := s.fb == nil // the file's claims are this process's own: no lease to renew, no send to cut off
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(cfg.InitialBackoff),
		backoff.WithMaxInterval(cfg.MaxBackoff),
		backoff.WithMaxElapsedTime(cfg.MaxElapsed),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMultiplier(2),
	)
	for {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if shared {
			// Renew when a quarter of the lease has passed since the last renewal
			// (one statement, one commit, saved on most sends of a busy partition);
			// a send ends three quarters of a lease after that renewal began, so at
			// least half a lease before the lease could pass to another instance.
			if time.Since(ls.renewed) >= cfg.Lease/4 {
				start := time.Now()
				ok, err := s.q.renew(ctx, s.owner, part, cfg.Lease)
				if err != nil {
					return true, err
				}
				if !ok {
					s.log.Info("cache: outbox partition taken over by another instance", zap.String("service", m.Service))
					return false, nil
				}
				ls.renewed = start
			}
			sctx, cancel = context.WithDeadline(ctx, ls.renewed.Add(cfg.Lease*3/4))
		}
		err = send(sctx, m)
		cancel()
		if err == nil {
			if err := o.dequeue(context.WithoutCancel(ctx), q.Seq, nil); err != nil {
				return true, err
			}
			res.Delivered++
			return true, nil
		}
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		m.Attempts++
		if errors.Is(err, ErrPermanent) {
			reason := err.Error()
			if len(reason) > maxReasonBytes {
				reason = reason[:maxReasonBytes]
			}
			k := seqKey(q.Seq)
			now := s.now().UnixNano()
			dead := Record{Key: k, Value: s.keys.seal(kindDead, now, m.EnqueuedAt.UnixNano(), bucketDead, k, encodeMessage(&m, reason, true)), T1: now}
			if err := o.dequeue(context.WithoutCancel(ctx), q.Seq, &dead); err != nil {
				return true, err
			}
			s.log.Info("cache: outbox message rejected permanently, moved to dead letters",
				zap.String("service", m.Service), zap.Uint64("seq", m.Seq))
			res.DeadLettered++
			return true, nil
		}
		d := bo.NextBackOff()
		if d == backoff.Stop {
			return true, fmt.Errorf("cache: outbox replay gave up on a %s message after %d attempts: %w", m.Service, m.Attempts, err)
		}
		res.Retries++
		s.log.Debug("cache: outbox send failed, retrying", zap.String("service", m.Service), zap.Duration("in", d), zap.Error(err))
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return true, ctx.Err()
		}
	}
}
