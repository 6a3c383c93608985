package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// The outbox on a Config.Backend: a queue shared by every instance of a fleet.
// Any instance replays. A partition is delivered by one instance at a time,
// the one holding its lease (Backend.Claim), oldest queued entry first; the
// lease is renewed before every send and every send is cut off after three
// quarters of the lease, so an instance that stalls or dies leaves the
// partition to another one after at most OutboxConfig.Lease, which resumes at
// the oldest message still queued. A message whose send succeeded just before
// its sender died is sent again by the next owner: the receiver deduplicates
// on the idempotency key, as after a crash with the file.

// sealQueued seals m as a queued record (no attempts) enqueued at enq.
func (o *Outbox) sealQueued(ix *indexer, m Message, enq int64) Queued {
	m.Attempts = 0
	ik := ix.sum("outbox", m.IdempotencyKey)
	rec := o.s.keys.seal(kindOutbox, enq, 0, bucketOutbox, ik, encodeMessage(&m, "", false))
	return Queued{Partition: ix.sum("partition", m.Partition), IdempotencyKey: ik, Value: rec, EnqueuedAt: enq}
}

// appendShared seals m and queues it; added is false when its idempotency key
// is already queued.
func (o *Outbox) appendShared(ctx context.Context, ix *indexer, m Message, enq int64) (bool, error) {
	seqs, err := o.s.be.Append(ctx, o.s.cfg.Tenant, []Queued{o.sealQueued(ix, m, enq)})
	if err != nil {
		return false, err
	}
	if len(seqs) != 1 {
		return false, fmt.Errorf("%w: append returned %d sequence numbers for 1 message", ErrUnavailable, len(seqs))
	}
	if seqs[0] != 0 {
		o.pending.Add(1)
	}
	return seqs[0] != 0, nil
}

func (o *Outbox) enqueueShared(ctx context.Context, m Message) error {
	ix, err := o.s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	_, err = o.appendShared(ctx, ix, m, o.s.now().UnixNano())
	return err
}

// openQueued authenticates and decodes a queued record.
func (o *Outbox) openQueued(q Queued) (Message, error) {
	s := o.s
	if len(q.Value) > s.cfg.MaxValueBytes+4*MaxKeyBytes+recordOverhead {
		return Message{}, s.tampered("outbox", fmt.Errorf("%w: malformed outbox entry", ErrTampered))
	}
	h, pt, err := s.keys.open(q.Value, bucketOutbox, q.IdempotencyKey, kindOutbox)
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

// sharedCountMaxAge bounds how old the queue size that Pending returns on a
// backend may be as to other instances' enqueues and deliveries: a call
// finding the figure older asks the backend again (one COUNT). The Store's
// own enqueues and deliveries are counted as they happen, so a Replay's
// progress or an Enqueue's effect costs no query.
const sharedCountMaxAge = time.Second

// monoStart anchors countedAt on the monotonic clock (staleness is about real
// time, whatever clock the Store was given).
var monoStart = time.Now()

// queueStats asks the backend for the queue's size; on failure it returns the
// last figures it had (logged), since Pending and OldestAge cannot fail.
func (o *Outbox) queueStats() (int, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, oldest, _, err := o.s.be.QueueStats(ctx, o.s.cfg.Tenant)
	if err != nil {
		o.s.log.Warn("cache: outbox size unknown, store backend unavailable", zap.Error(err))
		return max(0, int(o.pending.Load())), o.oldest.Load()
	}
	o.noteQueue(n, oldest)
	return n, oldest
}

// noteQueue records queue figures just read from the backend.
func (o *Outbox) noteQueue(n int, oldest int64) {
	o.pending.Store(int64(n))
	o.oldest.Store(oldest)
	o.countedAt.Store(int64(time.Since(monoStart)) + 1) // never 0: 0 means never counted
}

// sharedPending returns the cached queue size, asking the backend when it is
// older than sharedCountMaxAge (one caller asks; the others meanwhile get the
// cached figure).
func (o *Outbox) sharedPending() int {
	at := o.countedAt.Load()
	if (at == 0 || time.Since(monoStart)-time.Duration(at) >= sharedCountMaxAge) && o.counting.CompareAndSwap(false, true) {
		defer o.counting.Store(false)
		n, _ := o.queueStats()
		return n
	}
	return max(0, int(o.pending.Load()))
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

func (o *Outbox) deadLettersShared(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.s.scanShared(ctx, sharedDead, func(r Record) error {
		if d, err := o.openDead(r.Key, r.Value); err == nil {
			out = append(out, d)
		}
		return nil
	})
	return out, err
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

// requeueShared queues dead letter seq again and removes it, in one
// transaction when the backend is a RequeueBackend, else queued first then
// removed: a crash in between leaves it both queued and dead, never neither.
func (o *Outbox) requeueShared(ctx context.Context, seq uint64) error {
	s := o.s
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	k := seqKey(seq)
	raw, err := s.be.Get(ctx, s.cfg.Tenant, sharedDead, k)
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
	if rb, ok := s.be.(RequeueBackend); ok {
		seq, removed, err := rb.Requeue(ctx, s.cfg.Tenant, k, o.sealQueued(ix, d.Message, s.now().UnixNano()))
		switch {
		case err != nil:
			return err
		case !removed:
			return ErrNotFound // requeued or discarded meanwhile, by another call or instance
		case seq != 0:
			o.pending.Add(1)
		}
		return nil
	}
	if _, err := o.appendShared(ctx, ix, d.Message, s.now().UnixNano()); err != nil {
		return err
	}
	_, err = s.be.Delete(ctx, s.cfg.Tenant, sharedDead, k)
	return err
}

func (o *Outbox) discardShared(ctx context.Context, seq uint64) error {
	ok, err := o.s.be.Delete(ctx, o.s.cfg.Tenant, sharedDead, seqKey(seq))
	if err == nil && !ok {
		return ErrNotFound
	}
	return err
}

// replayShared claims partitions (up to Concurrency at a time) and delivers
// each; it returns when no partition is left to claim: every message is
// delivered, or the remaining ones are in partitions other instances hold.
func (o *Outbox) replayShared(ctx context.Context, send SendFunc) (ReplayResult, error) {
	s := o.s
	var res ReplayResult
	if _, err := s.sharedIndex(ctx); err != nil {
		return res, err
	}
	cfg := s.cfg.Outbox
	for {
		parts, err := s.be.Claim(ctx, s.cfg.Tenant, s.owner, cfg.Lease, cfg.Concurrency)
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
		)
		for _, p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var r ReplayResult
				err := o.replaySharedPartition(ctx, send, p, &r)
				mu.Lock()
				defer mu.Unlock()
				res.Delivered += r.Delivered
				res.DeadLettered += r.DeadLettered
				res.Retries += r.Retries
				res.Skipped += r.Skipped
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
	}
}

// replaySharedPartition delivers the queued messages of partition part while
// this instance holds its lease, releasing it when done or giving up.
func (o *Outbox) replaySharedPartition(ctx context.Context, send SendFunc, part []byte, res *ReplayResult) error {
	s := o.s
	t := s.cfg.Tenant
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.be.Release(rctx, t, s.owner, part); err != nil {
			s.log.Warn("cache: outbox lease not released; it expires by itself", zap.Error(err))
		}
	}()
	// Sequence numbers are drawn before commit, so instances' appends may
	// become visible out of sequence order: an entry can appear below one
	// already read. A cursor past the last entry read would leave it for a
	// later round, behind its producer's later writes; so after delivering a
	// page the partition is read again from its head (delivered entries are
	// gone from it). Appends made after an Append returned get higher numbers,
	// so a read that sees a producer's write also sees its earlier ones: each
	// producer's writes go out in the order they were acknowledged. The cursor
	// only moves over entries set aside as unreadable (skipped).
	var after uint64
	skipped := map[uint64]bool{}
	ls := &leaseState{}
	for {
		qs, err := s.be.Queue(ctx, t, part, after, 64)
		if err != nil {
			return err
		}
		if len(qs) == 0 {
			return nil
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
			held, err := o.deliverShared(ctx, send, q, m, part, ls, res)
			if err != nil || !held {
				return err
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

// deliverShared sends one queued message until it is accepted, rejected for
// good, or the partition's head gives up (MaxElapsed). held is false when the
// lease passed to another instance: it continues the partition.
// leaseState is when this Replay last renewed a partition's lease (the start
// of the renewal, on the local clock, so never later than the database's).
type leaseState struct{ renewed time.Time }

func (o *Outbox) deliverShared(ctx context.Context, send SendFunc, q Queued, m Message, part []byte, ls *leaseState, res *ReplayResult) (held bool, err error) {
	s := o.s
	t, cfg := s.cfg.Tenant, s.cfg.Outbox
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
		// Renew when a quarter of the lease has passed since the last renewal
		// (one statement, one commit, saved on most sends of a busy partition);
		// a send ends three quarters of a lease after that renewal began, so at
		// least half a lease before the lease could pass to another instance.
		if time.Since(ls.renewed) >= cfg.Lease/4 {
			start := time.Now()
			ok, err := s.be.Renew(ctx, t, s.owner, part, cfg.Lease)
			if err != nil {
				return true, err
			}
			if !ok {
				s.log.Info("cache: outbox partition taken over by another instance", zap.String("service", m.Service))
				return false, nil
			}
			ls.renewed = start
		}
		sctx, cancel := context.WithDeadline(ctx, ls.renewed.Add(cfg.Lease*3/4))
		err = send(sctx, m)
		cancel()
		if err == nil {
			removed, err := s.be.Dequeue(ctx, t, q.Seq, nil)
			if err != nil {
				return true, err
			}
			if removed {
				o.pending.Add(-1)
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
			removed, err := s.be.Dequeue(ctx, t, q.Seq, &dead)
			if err != nil {
				return true, err
			}
			if removed {
				o.pending.Add(-1)
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
