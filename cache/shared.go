package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
	var ix []byte
	var present []string
	formatOK := false
	for _, r := range recs {
		k := string(r.Key)
		if k == formatKey {
			formatOK = bytes.Equal(r.Value, []byte(formatValue))
			continue
		}
		if !strings.HasPrefix(k, keyCheckPrefix) {
			continue
		}
		id := k[len(keyCheckPrefix):]
		present = append(present, id)
		if s.keys.wraps[id] == nil {
			continue
		}
		_, pt, err := s.keys.open(r.Value, bucketMeta, r.Key, kindKeyCheck)
		if err != nil || len(pt) != 32 {
			return nil, &FileError{Path: s.path, Err: fmt.Errorf("%w: key %q does not match the key with that ID in the backend", ErrUnknownKey, id)}
		}
		if ix != nil && !bytes.Equal(ix, pt) {
			return nil, &FileError{Path: s.path, Err: fmt.Errorf("%w: key check records disagree", ErrCorrupt)}
		}
		ix = pt
	}
	if !formatOK {
		return nil, &FileError{Path: s.path, Err: fmt.Errorf("%w: no %s format record", ErrCorrupt, formatValue)}
	}
	if ix == nil {
		sort.Strings(present)
		return nil, &FileError{Path: s.path, Err: fmt.Errorf("%w: tenant written under key IDs %s, none configured", ErrUnknownKey, strings.Join(present, ", "))}
	}
	kc := []byte(keyCheckPrefix + s.keys.current)
	has := false
	for _, r := range recs {
		has = has || bytes.Equal(r.Key, kc)
	}
	if !has {
		now := s.now().UnixNano()
		if err := s.be.Put(ctx, t, sharedMeta, Record{Key: kc, Value: s.keys.sealWith(s.keys.current, kindKeyCheck, now, 0, bucketMeta, kc, ix), T1: now}); err != nil {
			return nil, err
		}
	}
	return newIndexer(ix)
}

func (s *Store) putShared(ctx context.Context, f *function, key string, value []byte, storedAt, notAfter int64, deferred bool) error {
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	dk := ix.sum(f.name, key)
	rec := s.keys.seal(kindAnswer, storedAt, notAfter, f.bucket, dk, encodeAnswer(key, value))
	r := Record{Key: dk, Value: rec, T1: storedAt, T2: notAfter}
	if deferred {
		v := bytes.Clone(value)
		if v == nil {
			v = []byte{}
		}
		return s.putDeferredShared(ctx, f, key, r, newMemEntry(f, v, storedAt, notAfter))
	}
	return s.putSharedNow(ctx, f, key, r)
}

// putSharedNow writes a sealed answer and returns once the backend has it;
// a deferred answer of the same key still waiting is dropped (this one is later).
func (s *Store) putSharedNow(ctx context.Context, f *function, key string, r Record) error {
	s.flushMu.RLock()
	defer s.flushMu.RUnlock()
	s.dropPending(memKey{f.name, key})
	return s.be.Put(ctx, s.cfg.Tenant, string(f.bucket), r)
}

func (s *Store) deleteShared(ctx context.Context, f *function, key string) error {
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	s.flushMu.RLock()
	defer s.flushMu.RUnlock()
	s.dropPending(memKey{f.name, key})
	_, err = s.be.Delete(ctx, s.cfg.Tenant, string(f.bucket), ix.sum(f.name, key))
	return err
}

func (s *Store) getShared(ctx context.Context, f *function, key string) (Entry, error) {
	if me := s.pendingShared(memKey{f.name, key}); me != nil {
		return makeEntry(f, key, me, s.now())
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return Entry{}, err
	}
	dk := ix.sum(f.name, key)
	raw, err := s.be.Get(ctx, s.cfg.Tenant, string(f.bucket), dk)
	if err != nil {
		return Entry{}, err
	}
	if raw == nil {
		return Entry{}, ErrNotFound
	}
	me, _, err := s.openAnswer(f, dk, raw, key)
	if err != nil {
		return Entry{}, err
	}
	return makeEntry(f, key, me, s.now())
}

// purgeShared deletes what is past retention. The backend's clear-text times
// only nominate: each record is authenticated and decided on its sealed
// times, and one that fails is kept as evidence and counted, as in the file.
func (s *Store) purgeShared(ctx context.Context) (int, error) {
	now := s.now().UnixNano()
	total := 0
	for _, f := range s.funcs {
		retention := int64(f.policy.Retention)
		bn := string(f.bucket)
		var after []byte
		for {
			recs, err := s.be.Expired(ctx, s.cfg.Tenant, bn, now-retention, now, after, sharedScanMax)
			if err != nil {
				return total, err
			}
			for _, r := range recs {
				h, _, err := s.keys.open(r.Value, f.bucket, r.Key, kindAnswer)
				if err != nil {
					_ = s.tampered(f.name, err) // kept as evidence
					continue
				}
				if !(now-h.t1 >= retention || (h.t2 != 0 && now >= h.t2)) {
					continue
				}
				ok, err := s.be.DeleteRecord(ctx, s.cfg.Tenant, bn, r.Key, r.Value)
				if err != nil {
					return total, err
				}
				if ok {
					total++
				}
			}
			if len(recs) < sharedScanMax {
				break
			}
			after = recs[len(recs)-1].Key
		}
	}
	if total > 0 {
		s.log.Info("cache: purged expired answers", zap.Int("count", total))
	}
	return total, nil
}

// scanShared calls fn for every record of bucket, sharedScanMax at a time.
func (s *Store) scanShared(ctx context.Context, bucket string, fn func(Record) error) error {
	var after []byte
	for {
		recs, err := s.be.Scan(ctx, s.cfg.Tenant, bucket, after, sharedScanMax)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < sharedScanMax {
			return nil
		}
		after = recs[len(recs)-1].Key
	}
}

// scanQueue calls fn for every queued record in sequence order.
func (s *Store) scanQueue(ctx context.Context, fn func(Queued) error) error {
	var after uint64
	for {
		qs, err := s.be.Queue(ctx, s.cfg.Tenant, nil, after, sharedScanMax)
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
	all, err := s.be.Buckets(ctx, s.cfg.Tenant)
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

func (s *Store) rekeyShared(ctx context.Context) (int, error) {
	if _, err := s.sharedIndex(ctx); err != nil {
		return 0, err
	}
	t := s.cfg.Tenant
	buckets, err := s.answerBuckets(ctx)
	if err != nil {
		return 0, err
	}
	buckets = append(buckets, sharedDead)
	total, failed := 0, 0
	for _, bn := range buckets {
		kind := byte(kindAnswer)
		if bn == sharedDead {
			kind = kindDead
		}
		err := s.scanShared(ctx, bn, func(r Record) error {
			if h, _, _, _, err := parseHeader(r.Value); err == nil && h.keyID == s.keys.current {
				return nil
			}
			h, pt, err := s.keys.open(r.Value, []byte(bn), r.Key, kind)
			if err != nil {
				failed++
				return nil
			}
			ok, err := s.be.Swap(ctx, t, bn, r.Value, Record{Key: r.Key, Value: s.keys.seal(kind, h.t1, h.t2, []byte(bn), r.Key, pt), T1: r.T1, T2: r.T2})
			if ok {
				total++
			}
			return err
		})
		if err != nil {
			return total, err
		}
	}
	err = s.scanQueue(ctx, func(q Queued) error {
		if h, _, _, _, err := parseHeader(q.Value); err == nil && h.keyID == s.keys.current {
			return nil
		}
		h, pt, err := s.keys.open(q.Value, bucketOutbox, q.IdempotencyKey, kindOutbox)
		if err != nil {
			failed++
			return nil
		}
		ok, err := s.be.SwapQueued(ctx, t, q.Seq, q.Value, s.keys.seal(kindOutbox, h.t1, h.t2, bucketOutbox, q.IdempotencyKey, pt))
		if ok {
			total++
		}
		return err
	})
	if err != nil {
		return total, err
	}
	if failed > 0 {
		s.log.Warn("cache: rekey left records that fail authentication", zap.Int("count", failed))
	}
	var drop [][]byte
	if err := s.scanShared(ctx, sharedMeta, func(r Record) error {
		k := string(r.Key)
		if strings.HasPrefix(k, keyCheckPrefix) && k[len(keyCheckPrefix):] != s.keys.current {
			drop = append(drop, r.Key)
		}
		return nil
	}); err != nil {
		return total, err
	}
	for _, k := range drop {
		if _, err := s.be.Delete(ctx, t, sharedMeta, k); err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Store) statsShared(ctx context.Context, st *Stats) error {
	now := s.now().UnixNano()
	buckets, err := s.answerBuckets(ctx)
	if err != nil {
		return err
	}
	for _, bn := range buckets {
		fn := bn[len(answerPrefix):]
		fs := st.Functions[fn]
		f := s.funcs[fn]
		err := s.scanShared(ctx, bn, func(r Record) error {
			fs.Count++
			fs.Bytes += int64(len(r.Value))
			st.FileBytes += int64(len(r.Value))
			age := time.Duration(now - r.T1)
			if fs.Count == 1 || age > fs.Oldest {
				fs.Oldest = age
			}
			if fs.Count == 1 || age < fs.Newest {
				fs.Newest = age
			}
			if f != nil && age < f.policy.ServeStale && (r.T2 == 0 || now < r.T2) {
				fs.Servable++
				if age < f.policy.Fresh {
					fs.Fresh++
				}
			}
			return nil
		})
		st.Functions[fn] = fs
		if err != nil {
			return err
		}
	}
	n, oldest, qbytes, err := s.be.QueueStats(ctx, s.cfg.Tenant)
	if err != nil {
		return err
	}
	st.Outbox.Pending = n
	if oldest != 0 {
		st.Outbox.OldestAge = max(0, time.Duration(now-oldest))
	}
	st.Outbox.Bytes += qbytes
	err = s.scanShared(ctx, sharedDead, func(r Record) error {
		st.Outbox.DeadLetters++
		st.Outbox.Bytes += int64(len(r.Value))
		return nil
	})
	st.FileBytes += st.Outbox.Bytes
	return err
}

// exportShared writes the answers, queued messages and dead letters of the
// tenant (see Export), reading the backend in batches.
func (s *Store) exportShared(ctx context.Context, emit func(exportLine) error, res *ExportResult) error {
	if _, err := s.sharedIndex(ctx); err != nil {
		return err
	}
	buckets, err := s.answerBuckets(ctx)
	if err != nil {
		return err
	}
	for _, bn := range buckets {
		fn := bn[len(answerPrefix):]
		f := s.funcs[fn]
		if f == nil {
			f = &function{name: fn, bucket: []byte(bn)}
		}
		err := s.scanShared(ctx, bn, func(r Record) error {
			me, key, err := s.openAnswer(f, r.Key, r.Value, "")
			if err != nil {
				res.Skipped++
				return nil
			}
			res.Answers++
			return emit(exportLine{Type: "answer", Function: fn, Key: key, Value: me.value, StoredAt: timePtr(me.storedAt), NotAfter: timePtr(me.notAfter)})
		})
		if err != nil {
			return err
		}
	}
	if err := s.scanQueue(ctx, func(q Queued) error {
		m, err := s.outbox.openQueued(q)
		if err != nil {
			res.Skipped++
			return nil
		}
		res.Outbox++
		return emit(exportLine{Type: "outbox", Seq: m.Seq, IdempotencyKey: m.IdempotencyKey, Partition: &m.Partition, Service: m.Service,
			Payload: m.Payload, EnqueuedAt: timePtr(m.EnqueuedAt.UnixNano())})
	}); err != nil {
		return err
	}
	return s.scanShared(ctx, sharedDead, func(r Record) error {
		d, err := s.outbox.openDead(r.Key, r.Value)
		if err != nil {
			res.Skipped++
			return nil
		}
		res.DeadLetters++
		m := d.Message
		return emit(exportLine{Type: "dead_letter", Seq: m.Seq, IdempotencyKey: m.IdempotencyKey, Partition: &m.Partition, Service: m.Service,
			Payload: m.Payload, EnqueuedAt: timePtr(m.EnqueuedAt.UnixNano()), Attempts: m.Attempts, Reason: d.Reason, DeadAt: timePtr(d.DeadAt.UnixNano())})
	})
}

// importShared stores one validated export line (see importOp for the checks).
func (s *Store) importShared(ctx context.Context, l exportLine, m Message, res *ExportResult) error {
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	t := s.cfg.Tenant
	switch l.Type {
	case "answer":
		bucket := []byte(answerPrefix + l.Function)
		dk := ix.sum(l.Function, l.Key)
		storedAt := l.StoredAt.UnixNano()
		var notAfter int64
		if l.NotAfter != nil {
			notAfter = l.NotAfter.UnixNano()
		}
		rec := s.keys.seal(kindAnswer, storedAt, notAfter, bucket, dk, encodeAnswer(l.Key, l.Value))
		wrote, err := s.be.PutNewer(ctx, t, string(bucket), Record{Key: dk, Value: rec, T1: storedAt, T2: notAfter})
		if err != nil {
			return err
		}
		if wrote {
			res.Answers++
		} else {
			res.Skipped++
		}
	case "outbox":
		added, err := s.outbox.appendShared(ctx, ix, m, l.EnqueuedAt.UnixNano())
		if err != nil {
			return err
		}
		if added {
			res.Outbox++
		} else {
			res.Skipped++
		}
	case "dead_letter":
		seq, err := s.be.NextSeq(ctx)
		if err != nil {
			return err
		}
		k := seqKey(seq)
		m.Attempts = l.Attempts
		deadAt := l.DeadAt.UnixNano()
		rec := s.keys.seal(kindDead, deadAt, l.EnqueuedAt.UnixNano(), bucketDead, k, encodeMessage(&m, l.Reason, true))
		if err := s.be.Put(ctx, t, sharedDead, Record{Key: k, Value: rec, T1: deadAt}); err != nil {
			return err
		}
		res.DeadLetters++
	}
	return nil
}
