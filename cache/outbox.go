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
	bolt "go.etcd.io/bbolt"
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
// is unreachable. It lives in its Store's file and is safe for concurrent use.
type Outbox struct {
	s         *Store
	pending   atomic.Int64
	dead      atomic.Int64
	oldest    atomic.Int64 // with a Backend: the last known enqueued-at of the oldest message
	countedAt atomic.Int64 // with a Backend: when pending was last read from it (since monoStart, +1; 0 = never)
	counting  atomic.Bool  // with a Backend: a call is reading pending from it
	replaying atomic.Bool
}

func newOutbox(s *Store) *Outbox { return &Outbox{s: s} }

func (o *Outbox) load() error {
	if o.s.be != nil {
		return nil
	}
	return o.s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOutbox); b != nil {
			o.pending.Store(int64(b.Stats().KeyN))
		}
		if b := tx.Bucket(bucketDead); b != nil {
			o.dead.Store(int64(b.Stats().KeyN))
		}
		return nil
	})
}

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
// synced. Concurrent calls share commits (group commit), so many producers
// pay for few syncs. If a message with the same idempotency key is already
// pending, Enqueue adds nothing and returns nil. The Seq, EnqueuedAt and
// Attempts fields of m are ignored.
// If ctx ends before the file is synced, Enqueue returns ctx.Err() at once;
// the message may still be stored afterwards, so the outcome is unknown:
// enqueue it again with the same idempotency key, which adds it only if it
// is not already pending.
func (o *Outbox) Enqueue(ctx context.Context, m Message) error {
	if err := o.validate(&m); err != nil {
		return err
	}
	s := o.s
	if s.be != nil {
		if s.closed.Load() {
			return ErrClosed
		}
		return o.enqueueShared(ctx, m)
	}
	m.Attempts = 0
	pt := encodeMessage(&m, "", false)
	ik := s.index.sum("outbox", m.IdempotencyKey)
	now := s.now().UnixNano()
	added := false
	return s.write(ctx, func(tx *bolt.Tx) error {
		var err error
		added, err = o.appendTx(tx, ik, pt, now)
		return err
	}, func() {
		if added {
			o.pending.Add(1)
		}
	})
}

// appendTx appends the encoded message pt (see encodeMessage) to the queue
// under the next Seq, sealed with enqueued-at enq, and indexes it under ik,
// the HMAC of its idempotency key, unless a message with that key is already
// pending (added false). Enqueue, Requeue and Import all append through it.
func (o *Outbox) appendTx(tx *bolt.Tx, ik, pt []byte, enq int64) (added bool, err error) {
	idx, err := tx.CreateBucketIfNotExists(bucketOutboxIndex)
	if err != nil {
		return false, err
	}
	if idx.Get(ik) != nil {
		return false, nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketOutbox)
	if err != nil {
		return false, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return false, err
	}
	k := seqKey(seq)
	if err := b.Put(k, o.s.keys.seal(kindOutbox, enq, 0, bucketOutbox, k, pt)); err != nil {
		return false, err
	}
	if err := idx.Put(ik, k); err != nil {
		return false, err
	}
	return true, nil
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
	if o.s.be != nil {
		return o.sharedPending()
	}
	return int(o.pending.Load())
}

// DeadLetterCount returns how many messages were rejected permanently and set aside.
func (o *Outbox) DeadLetterCount() int {
	if o.s.be != nil {
		return o.deadCountShared()
	}
	return int(o.dead.Load())
}

// OldestAge returns the age of the oldest pending message, 0 if none.
func (o *Outbox) OldestAge() time.Duration {
	var t1 int64
	if o.s.be != nil {
		_, t1 = o.queueStats()
		if t1 == 0 {
			return 0
		}
		return max(0, o.s.now().Sub(time.Unix(0, t1)))
	}
	_ = o.s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOutbox); b != nil {
			if _, v := b.Cursor().First(); v != nil {
				if h, _, _, _, err := parseHeader(v); err == nil {
					t1 = h.t1
				}
			}
		}
		return nil
	})
	if t1 == 0 {
		return 0
	}
	return max(0, o.s.now().Sub(time.Unix(0, t1)))
}

// DeadLetters returns the messages set aside, oldest first. Records that
// fail authentication are skipped (and counted in Stats).
func (o *Outbox) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if o.s.be != nil {
		return o.deadLettersShared(ctx)
	}
	var out []DeadLetter
	err := o.s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDead)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := o.openDead(k, v)
			if err != nil {
				return nil
			}
			out = append(out, d)
			return nil
		})
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

func (o *Outbox) openMessage(k, v []byte) (Message, error) {
	s := o.s
	if len(k) != 8 || len(v) > s.cfg.MaxValueBytes+4*MaxKeyBytes+recordOverhead {
		return Message{}, s.tampered("outbox", fmt.Errorf("%w: malformed outbox entry", ErrTampered))
	}
	h, pt, err := s.keys.open(v, bucketOutbox, k, kindOutbox)
	if err != nil {
		return Message{}, s.tampered("outbox", err)
	}
	m, _, err := decodeMessage(pt, s.cfg.MaxValueBytes, false)
	if err != nil {
		return Message{}, s.tampered("outbox", fmt.Errorf("%w: %w", ErrTampered, err))
	}
	m.Seq = binary.BigEndian.Uint64(k)
	m.EnqueuedAt = time.Unix(0, h.t1)
	return m, nil
}

// Requeue moves dead letter seq back to the end of the queue (with a new
// Seq and no attempts), for example after the vendor fixed what the receiver
// rejected. If its idempotency key is pending again meanwhile, the dead
// letter is just removed.
func (o *Outbox) Requeue(ctx context.Context, seq uint64) error {
	s := o.s
	if s.be != nil {
		return o.requeueShared(ctx, seq)
	}
	k := seqKey(seq)
	var d DeadLetter
	if err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDead)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var err error
		d, err = o.openDead(k, bytes.Clone(v))
		return err
	}); err != nil {
		return err
	}
	m := d.Message
	m.Attempts = 0
	pt := encodeMessage(&m, "", false)
	ik := s.index.sum("outbox", m.IdempotencyKey)
	now := s.now().UnixNano()
	added, removed := false, false
	return s.write(ctx, func(tx *bolt.Tx) error {
		added, removed = false, false
		db := tx.Bucket(bucketDead)
		if db == nil || db.Get(k) == nil {
			return nil
		}
		if err := db.Delete(k); err != nil {
			return err
		}
		removed = true
		var err error
		added, err = o.appendTx(tx, ik, pt, now)
		return err
	}, func() {
		if removed {
			o.dead.Add(-1)
		}
		if added {
			o.pending.Add(1)
		}
	})
}

// Discard deletes dead letter seq for good.
func (o *Outbox) Discard(ctx context.Context, seq uint64) error {
	if o.s.be != nil {
		return o.discardShared(ctx, seq)
	}
	k := seqKey(seq)
	removed := false
	return o.s.write(ctx, func(tx *bolt.Tx) error {
		removed = false
		b := tx.Bucket(bucketDead)
		if b == nil || b.Get(k) == nil {
			return ErrNotFound
		}
		removed = true
		return b.Delete(k)
	}, func() {
		if removed {
			o.dead.Add(-1)
		}
	})
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
func (o *Outbox) Replay(ctx context.Context, send SendFunc) (ReplayResult, error) {
	var res ReplayResult
	if !o.replaying.CompareAndSwap(false, true) {
		return res, ErrReplaying
	}
	defer o.replaying.Store(false)
	if o.s.be != nil {
		return o.replayShared(ctx, send)
	}
	var after uint64
	for {
		parts, last, skipped, err := o.snapshot(after)
		res.Skipped += skipped
		if err != nil {
			return res, err
		}
		if len(parts) == 0 {
			return res, nil
		}
		after = last
		if err := o.replayRound(ctx, send, parts, &res); err != nil {
			return res, err
		}
	}
}

// snapshot lists pending sequence numbers above after, grouped by partition
// in order of first appearance.
func (o *Outbox) snapshot(after uint64) (parts [][]uint64, last uint64, skipped int, err error) {
	byPart := map[string]int{}
	err = o.s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			m, err := o.openMessage(k, v)
			if len(k) == 8 {
				last = max(last, binary.BigEndian.Uint64(k))
			}
			if err != nil {
				skipped++
				continue
			}
			i, ok := byPart[m.Partition]
			if !ok {
				i = len(parts)
				byPart[m.Partition] = i
				parts = append(parts, nil)
			}
			parts[i] = append(parts[i], m.Seq)
		}
		return nil
	})
	return parts, last, skipped, err
}

func (o *Outbox) replayRound(ctx context.Context, send SendFunc, parts [][]uint64, res *ReplayResult) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan []uint64)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	workers := min(o.s.cfg.Outbox.Concurrency, len(parts))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seqs := range work {
				var r ReplayResult
				err := o.replayPartition(ctx, send, seqs, &r)
				mu.Lock()
				res.Delivered += r.Delivered
				res.DeadLettered += r.DeadLettered
				res.Retries += r.Retries
				res.Skipped += r.Skipped
				mu.Unlock()
				if err != nil {
					fail(err)
					if ctx.Err() != nil || errors.Is(err, ErrClosed) {
						cancel()
					}
				}
			}
		}()
	}
feed:
	for _, p := range parts {
		select {
		case work <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func (o *Outbox) replayPartition(ctx context.Context, send SendFunc, seqs []uint64, res *ReplayResult) error {
	s := o.s
	cfg := s.cfg.Outbox
	for _, seq := range seqs {
		k := seqKey(seq)
		var raw []byte
		if err := s.view(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketOutbox); b != nil {
				raw = bytes.Clone(b.Get(k))
			}
			return nil
		}); err != nil {
			return err
		}
		if raw == nil {
			continue // removed meanwhile
		}
		m, err := o.openMessage(k, raw)
		if err != nil {
			res.Skipped++
			continue
		}
		bo := backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(cfg.InitialBackoff),
			backoff.WithMaxInterval(cfg.MaxBackoff),
			backoff.WithMaxElapsedTime(cfg.MaxElapsed),
			backoff.WithRandomizationFactor(0.5),
			backoff.WithMultiplier(2),
		)
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := send(ctx, m)
			if err == nil {
				if err := o.remove(k, m, "", false); err != nil {
					return err
				}
				res.Delivered++
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.Attempts++
			if errors.Is(err, ErrPermanent) {
				reason := err.Error()
				if len(reason) > maxReasonBytes {
					reason = reason[:maxReasonBytes]
				}
				if err := o.remove(k, m, reason, true); err != nil {
					return err
				}
				s.log.Info("cache: outbox message rejected permanently, moved to dead letters",
					zap.String("service", m.Service), zap.Uint64("seq", m.Seq))
				res.DeadLettered++
				break
			}
			d := bo.NextBackOff()
			if d == backoff.Stop {
				return fmt.Errorf("cache: outbox replay gave up on a %s message after %d attempts: %w", m.Service, m.Attempts, err)
			}
			res.Retries++
			s.log.Debug("cache: outbox send failed, retrying", zap.String("service", m.Service), zap.Duration("in", d), zap.Error(err))
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
	return nil
}

// remove deletes a delivered message, or moves it to the dead letters.
func (o *Outbox) remove(k []byte, m Message, reason string, dead bool) error {
	s := o.s
	ik := s.index.sum("outbox", m.IdempotencyKey)
	var rec []byte
	if dead {
		rec = s.keys.seal(kindDead, s.now().UnixNano(), m.EnqueuedAt.UnixNano(), bucketDead, k, encodeMessage(&m, reason, true))
	}
	removed := false
	return s.write(context.Background(), func(tx *bolt.Tx) error {
		removed = false
		b := tx.Bucket(bucketOutbox)
		if b == nil || b.Get(k) == nil {
			return nil
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		removed = true
		if idx := tx.Bucket(bucketOutboxIndex); idx != nil {
			if v := idx.Get(ik); bytes.Equal(v, k) {
				if err := idx.Delete(ik); err != nil {
					return err
				}
			}
		}
		if !dead {
			return nil
		}
		d, err := tx.CreateBucketIfNotExists(bucketDead)
		if err != nil {
			return err
		}
		return d.Put(k, rec)
	}, func() {
		if removed {
			o.pending.Add(-1)
			if dead {
				o.dead.Add(1)
			}
		}
	})
}
