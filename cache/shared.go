package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// This file holds what a Store does with a Config.Backend (a store shared by a
// fleet) instead of its bbolt file. Records are sealed exactly as in the file:
// same format, same keys, same associated data, except that a queued message
// is bound to the HMAC of its idempotency key (its sequence number is drawn by
// the backend when it commits) where the file binds it to its sequence number.

const (
	sharedMeta    = "meta"
	sharedDead    = "dead"
	sharedScanMax = 500
)

// openShared prepares a Store on cfg.Backend. An unreachable backend does not
// fail Open: the Store starts without its index key and loads it on the first
// call that finds the backend back (calls until then return ErrUnavailable).
func (s *Store) openShared() error {
	s.be = s.cfg.Backend
	s.rb = s.be
	s.q = backendQueue{be: s.be, tenant: s.cfg.Tenant}
	if rb, ok := s.be.(RequeueBackend); ok {
		s.q = requeueBackendQueue{backendQueue: backendQueue{be: s.be, tenant: s.cfg.Tenant}, rb: rb}
	}
	s.path = "backend:" + s.cfg.Tenant
	var id [8]byte
	_, _ = rand.Read(id[:])
	s.owner = s.cfg.Tenant + "/" + hex.EncodeToString(id[:])
	s.outbox = newOutbox(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.sharedIndex(ctx); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			return err
		}
		s.log.Warn("cache: store backend unavailable at open; the store loads its keys when it is back", zap.Error(err))
	} else if _, err := s.Purge(ctx); err != nil {
		s.log.Warn("cache: purge at open failed", zap.Error(err))
	}
	return nil
}

// sharedIndex returns the tenant's index key, loading (or creating) it from
// the backend's meta records the first time the backend answers.
func (s *Store) sharedIndex(ctx context.Context) (*indexer, error) {
	if ix := s.shared.Load(); ix != nil {
		return ix, nil
	}
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	if ix := s.shared.Load(); ix != nil {
		return ix, nil
	}
	ix, err := s.loadSharedMeta(ctx)
	if err != nil {
		return nil, err
	}
	s.shared.Store(ix)
	return ix, nil
}

func (s *Store) loadSharedMeta(ctx context.Context) (*indexer, error) {
	t := s.cfg.Tenant
	recs, err := s.be.Scan(ctx, t, sharedMeta, nil, 1000)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		// A new tenant: draw its index key. Several instances may race here;
		// Create lets exactly one win and the others read its records.
		ix := make([]byte, 32)
		_, _ = rand.Read(ix)
		kc := []byte(keyCheckPrefix + s.keys.current)
		now := s.now().UnixNano()
		if _, err := s.be.Create(ctx, t, sharedMeta, []Record{
			{Key: []byte(formatKey), Value: []byte(formatValue), T1: now},
			{Key: kc, Value: s.keys.sealWith(s.keys.current, kindKeyCheck, now, 0, bucketMeta, kc, ix), T1: now},
		}); err != nil {
			return nil, err
		}
		if recs, err = s.be.Scan(ctx, t, sharedMeta, nil, 1000); err != nil {
			return nil, err
		}
	}
	ix, needCheck, err := indexFromMeta(s.path, "backend", s.keys, recs)
	if err != nil {
		return nil, err
	}
	if needCheck {
		kc := []byte(keyCheckPrefix + s.keys.current)
		now := s.now().UnixNano()
		if err := s.be.Put(ctx, t, sharedMeta, Record{Key: kc, Value: s.keys.sealWith(s.keys.current, kindKeyCheck, now, 0, bucketMeta, kc, ix), T1: now}); err != nil {
			return nil, err
		}
	}
	return newIndexer(ix)
}

// putSharedNow writes a sealed answer and returns once the backend has it;
// a deferred answer of the same key still waiting is dropped (this one is later).
func (s *Store) putSharedNow(ctx context.Context, f *function, key string, r Record) error {
	s.flushMu.RLock()
	defer s.flushMu.RUnlock()
	s.dropPending(memKey{f.name, key})
	return s.be.Put(ctx, s.cfg.Tenant, string(f.bucket), r)
}

// scanPages calls fn with the records of bucket, sharedScanMax at a time
// (each page read in one short read of the storage).
func (s *Store) scanPages(ctx context.Context, bucket string, fn func([]Record) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		recs, err := s.rb.Scan(ctx, s.cfg.Tenant, bucket, after, sharedScanMax)
		if err != nil {
			return err
		}
		if err := fn(recs); err != nil {
			return err
		}
		if len(recs) < sharedScanMax {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}

// scanShared calls fn for every record of bucket, sharedScanMax at a time.
func (s *Store) scanShared(ctx context.Context, bucket string, fn func(Record) error) error {
	return s.scanPages(ctx, bucket, func(recs []Record) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanQueue calls fn for every queued record in sequence order.
func (s *Store) scanQueue(ctx context.Context, fn func(Queued) error) error {
	var after uint64
	for {
		qs, err := s.q.entries(ctx, nil, after, sharedScanMax)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if err := fn(q); err != nil {
				return err
			}
		}
		if len(qs) < sharedScanMax {
			return nil
		}
		after = qs[len(qs)-1].Seq
	}
}

func (s *Store) answerBuckets(ctx context.Context) ([]string, error) {
	all, err := s.rb.Buckets(ctx, s.cfg.Tenant)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range all {
		if strings.HasPrefix(b, answerPrefix) {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out, nil
}

// statsQueue reads the size of the queue.
func (s *Store) statsQueue(ctx context.Context, st *Stats) error {
	n, oldest, qbytes, err := s.q.stats(ctx)
	if err != nil {
		return err
	}
	st.Outbox.Pending = n
	s.outbox.noteQueue(n, oldest)
	if oldest != 0 {
		st.Outbox.OldestAge = max(0, time.Duration(s.now().UnixNano()-oldest))
	}
	st.Outbox.Bytes += qbytes
	return nil
}

// exportQueue writes the queued messages in sequence order.
func (s *Store) exportQueue(ctx context.Context, emit func(exportLine) error, res *ExportResult) error {
	if _, err := s.sharedIndex(ctx); err != nil {
		return err
	}
	return s.scanQueue(ctx, func(q Queued) error {
		m, err := s.outbox.openQueued(q)
		if err != nil {
			res.Skipped++
			return nil
		}
		res.Outbox++
		return emit(exportLine{Type: "outbox", Seq: m.Seq, IdempotencyKey: m.IdempotencyKey, Partition: &m.Partition, Service: m.Service,
			Payload: m.Payload, EnqueuedAt: timePtr(m.EnqueuedAt.UnixNano())})
	})
}
