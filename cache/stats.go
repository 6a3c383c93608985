package cache

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats describes what a Store holds. It is computed from the records'
// clear-text headers: nothing is decrypted.
type Stats struct {
	Path      string
	FileBytes int64
	// Functions has one entry per function with records on disk or a policy.
	Functions map[string]FunctionStats
	Outbox    OutboxStats
	// MemoryEntries is how many decrypted answers the memory LRU holds, and
	// MemoryBytes the bytes of their values.
	MemoryEntries int
	MemoryBytes   int64
	// AuthFailures counts the records that failed authentication (and were
	// skipped) since Open.
	AuthFailures uint64
	// Commits counts the write transactions committed to the file since Open
	// (each one fsync); 0 with a Backend.
	Commits uint64
	// DeferredPending counts the answers stored with Deferred that wait for
	// their commit (in memory only: a crash now would lose them).
	DeferredPending int
	// DeferredFailed counts the answers stored with Deferred whose commit
	// failed since Open (each failure is logged at error level, without
	// personal data). With the file such an answer stays in the memory LRU.
	DeferredFailed uint64
}

// FunctionStats describes the answers of one priority function.
type FunctionStats struct {
	Count int
	Bytes int64 // bytes of the encrypted records
	// Oldest and Newest are the ages of the oldest and newest answers (0 if none).
	Oldest, Newest time.Duration
	// Servable counts the answers Get would still return (fresh or stale).
	Servable int
	// Fresh counts the answers younger than Policy.Fresh.
	Fresh int
	// Registered is false for records of a function no longer configured.
	Registered bool
}

// OutboxStats describes the outbox.
type OutboxStats struct {
	Pending     int
	OldestAge   time.Duration // age of the oldest pending message, 0 if none
	DeadLetters int
	Bytes       int64 // bytes of the encrypted pending messages and dead letters
}

// Stats counts the Store's records per function and in the outbox.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{Path: s.path, Functions: map[string]FunctionStats{}, MemoryEntries: s.mem.Len(), MemoryBytes: s.memBytes.Load(), AuthFailures: s.authFailures.Load(),
		Commits: s.commits.Load(), DeferredPending: s.deferredPending(), DeferredFailed: s.deferFailures.Load()}
	for name := range s.funcs {
		st.Functions[name] = FunctionStats{Registered: true}
	}
	// The same records and queue whatever keeps them; FileBytes is the
	// file's size, or the bytes of the tenant's sealed records in a Backend.
	err := s.statsRecords(ctx, &st)
	if err == nil {
		err = s.statsQueue(ctx, &st)
	}
	if s.fb == nil {
		st.FileBytes += st.Outbox.Bytes
		return st, err
	}
	if verr := s.view(func(tx *bolt.Tx) error {
		st.FileBytes = tx.Size()
		return nil
	}); err == nil {
		err = verr
	}
	return st, err
}

// statsRecords counts the answers per function (from their clear-text
// times) and the bytes of the dead letters.
func (s *Store) statsRecords(ctx context.Context, st *Stats) error {
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
			if r.T1 == 0 {
				return nil // no readable clear-text time (a damaged header): counted, not aged
			}
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
	return s.scanShared(ctx, sharedDead, func(r Record) error {
		st.Outbox.DeadLetters++
		st.Outbox.Bytes += int64(len(r.Value))
		return nil
	})
}
