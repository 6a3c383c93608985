package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrConflict reports an Update that kept meeting other writers of the same
// record and gave up after MaxUpdateAttempts reads.
var ErrConflict = errors.New("cache: update kept conflicting with other writers")

// MaxUpdateAttempts bounds the reads of one Update (each attempt that meets a
// concurrent writer reads the record again).
const MaxUpdateAttempts = 64

// seedStoredAt is the stored-at time of the empty record an Update writes
// where there was none: earlier than any value a Store writes, so that the
// seed never replaces a value (PutNewer) and a concurrent seed replaces only
// a seed.
const seedStoredAt = 1

// Update replaces the value of function for key by fn(old) as one atomic step
// with respect to every other Update of the same key, in this process and in
// every process sharing the storage (a fleet on one Backend): no Update is
// lost. old is the current value, nil when there is none, when it is empty,
// or when it failed authentication (it is then replaced); fn must not keep
// old, and may be called more than once (each time another writer came in
// between its read and its write); an error of fn ends the Update with that
// error and nothing written. Update returns once the new value is durable,
// as Put does. It reads the storage, not the memory cache or deferred
// answers (those waiting are committed first), so it suits a record updated
// rarely and by several writers, such as a log of operator actions. A Put of
// the same key at the same time is not ordered with it (the later wins).
func (s *Store) Update(ctx context.Context, function, key string, fn func(old []byte) ([]byte, error)) error {
	f, err := s.writable(function, key)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	// Deferred answers waiting are committed first, so that none lands over this Update's
	// value; one that fails to commit is counted and logged by the flush, not reported here.
	if err := s.Flush(ctx); errors.Is(err, ErrClosed) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	dk := ix.sum(f.name, key)
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	conflicts := 0
	for range MaxUpdateAttempts {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := s.rb.Get(ctx, s.cfg.Tenant, f.bkt, dk)
		if err != nil {
			return err
		}
		if raw == nil {
			// No record: write an empty one that loses against any value (a seed),
			// then read again and replace it like any other.
			seed := Record{Key: dk, Value: s.keys.seal(kindAnswer, seedStoredAt, 0, f.bucket, dk, encodeAnswer(key, nil)), T1: seedStoredAt}
			if _, err := s.rb.PutNewer(ctx, s.cfg.Tenant, f.bkt, seed); err != nil {
				return err
			}
			continue // not a conflict, but it costs an attempt: a Purge can only delete a seed so often
		}
		var old []byte
		if me, _, err := s.openAnswer(f, dk, raw, key); err == nil && len(me.value) > 0 {
			old = me.value
		}
		value, err := fn(old)
		if err != nil {
			return err
		}
		if len(value) > s.cfg.MaxValueBytes {
			return fmt.Errorf("%w: %s value of %d bytes (limit %d)", ErrTooLarge, function, len(value), s.cfg.MaxValueBytes)
		}
		storedAt := s.now().UnixNano()
		if storedAt <= seedStoredAt {
			storedAt = seedStoredAt + 1
		}
		r := Record{Key: dk, Value: s.keys.seal(kindAnswer, storedAt, 0, f.bucket, dk, encodeAnswer(key, value)), T1: storedAt}
		ok, err := s.rb.Swap(ctx, s.cfg.Tenant, f.bkt, raw, r)
		if err != nil {
			return err
		}
		if !ok {
			// Another writer came in between: read its value and apply fn to it.
			conflicts++
			if !sleepCtx(ctx, conflictPause(conflicts)) {
				return ctx.Err()
			}
			continue
		}
		if s.fb != nil {
			// The memory cache follows the file: what a Get read before this write
			// is not added after it (gen), and the older value leaves it.
			mk := memKey{f.name, key}
			s.memMu.Lock()
			s.gen.Add(1)
			s.mem.Remove(mk)
			s.memMu.Unlock()
		}
		return nil
	}
	return fmt.Errorf("%w: %s, %d attempts", ErrConflict, function, MaxUpdateAttempts)
}

// conflictPause is the wait after the n-th conflict of an Update with another
// writer: random, growing with n, at most 20 ms, so that the instances of a
// fleet updating the same record take turns.
func conflictPause(n int) time.Duration {
	ceiling := min(time.Duration(n)*time.Millisecond, 20*time.Millisecond)
	return rand.N(ceiling) + 1
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
