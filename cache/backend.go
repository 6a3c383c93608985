package cache

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable: the Store's Backend (a database shared by several
// instances) cannot be reached or did not answer in time. Nothing was read,
// or nothing was written: a Put or Enqueue that returns it did not store its
// data (or, for an Enqueue whose commit was cut off, may have: repeating it
// with the same idempotency key is safe). The Store keeps trying on its own;
// the next call after the backend is back succeeds.
var ErrUnavailable = errors.New("cache: store backend unavailable")

// Backend keeps a Store's records somewhere else than the default bbolt
// file, typically a database shared by every instance of a fleet (package
// pgstore is one, on PostgreSQL). It only ever sees sealed records: the
// Store encrypts every value (AES-256-GCM under the vendor's keys) and turns
// every logical key into an HMAC before calling it, exactly as for the
// file, so the backend (and whoever reads its storage or backups) holds no
// SSIN, answer or payload in clear. The clear-text times a Backend receives
// (T1, T2, EnqueuedAt) are the same as the file's record headers hold.
//
// Records live in buckets of one tenant: "meta" (the format and key check
// records), "a:<function>" (answers) and "dead" (dead letters). Queued writes
// live in a queue per tenant, ordered by a sequence the backend assigns,
// grouped in partitions identified by an HMAC, and delivered under leases so
// that any instance may replay them but one partition is only delivered by
// one instance at a time.
//
// Every method must be safe for concurrent use, bound its own duration (a
// per-query timeout) even when ctx has no deadline, and return an error
// wrapping ErrUnavailable when the backend cannot be reached or fails, or
// ctx.Err() when ctx ended first.
type Backend interface {
	RecordBackend
	QueueBackend
}

// RecordBackend is the half of a Backend that keeps records in buckets
// (answers, the meta records, dead letters). The default bbolt file is one
// too: the Store's answers go through this interface whichever storage
// keeps them.
type RecordBackend interface {
	// Get returns the record of bucket under key; nil, nil when there is none.
	Get(ctx context.Context, tenant, bucket string, key []byte) ([]byte, error)
	// Put stores (or replaces) a record.
	Put(ctx context.Context, tenant, bucket string, r Record) error
	// PutNewer stores r unless the record it would replace has a later T1;
	// it reports whether it wrote.
	PutNewer(ctx context.Context, tenant, bucket string, r Record) (bool, error)
	// Create stores all of recs, in one transaction, only if the bucket holds
	// no record; it reports whether it did. Several instances creating the
	// same bucket at once: exactly one succeeds.
	Create(ctx context.Context, tenant, bucket string, recs []Record) (bool, error)
	// Swap replaces the record under r.Key by r only if it is still old.
	Swap(ctx context.Context, tenant, bucket string, old []byte, r Record) (bool, error)
	// Delete removes the record under key and reports whether there was one.
	Delete(ctx context.Context, tenant, bucket string, key []byte) (bool, error)
	// Expired returns up to limit records of bucket with keys above after
	// (all keys when after is nil), in key order, whose T1 is at most
	// storedBefore or whose T2 is set (not 0) and at most now: the candidates
	// of a purge, which the Store authenticates before deleting them.
	Expired(ctx context.Context, tenant, bucket string, storedBefore, now int64, after []byte, limit int) ([]Record, error)
	// DeleteRecord removes the record under key only if it still holds value;
	// it reports whether it did.
	DeleteRecord(ctx context.Context, tenant, bucket string, key, value []byte) (bool, error)
	// Scan returns up to limit records of bucket with keys above after (all
	// keys when after is nil), in key order.
	Scan(ctx context.Context, tenant, bucket string, after []byte, limit int) ([]Record, error)
	// Buckets lists the buckets of tenant that hold records.
	Buckets(ctx context.Context, tenant string) ([]string, error)
}

// QueueBackend is the half of a Backend that keeps the outbox's queue.
type QueueBackend interface {
	// Append adds queued records (durably: committed when Append returns),
	// assigning each the next sequence number, and returns the numbers in
	// the order of qs; 0 for a record whose IdempotencyKey is already queued
	// (it is not added). Appends made after an Append returned get higher
	// numbers.
	Append(ctx context.Context, tenant string, qs []Queued) ([]uint64, error)
	// NextSeq draws a sequence number (for a dead letter's key).
	NextSeq(ctx context.Context) (uint64, error)
	// Queue returns up to limit queued records with sequence numbers above
	// after, in sequence order; only those of partition part unless part is nil.
	Queue(ctx context.Context, tenant string, part []byte, after uint64, limit int) ([]Queued, error)
	// QueueStats counts the queued records, the T1 of the oldest (0 if
	// none), and the bytes of the queued records.
	QueueStats(ctx context.Context, tenant string) (count int, oldest int64, bytes int64, err error)
	// Claim leases up to max partitions holding queued records that no other
	// owner holds an unexpired lease on, to owner for lease, and returns them.
	Claim(ctx context.Context, tenant, owner string, lease time.Duration, max int) ([][]byte, error)
	// Renew extends owner's lease on part; false if owner no longer holds it
	// (it expired and another owner took it over).
	Renew(ctx context.Context, tenant, owner string, part []byte, lease time.Duration) (bool, error)
	// Release ends owner's lease on part, if it still holds it.
	Release(ctx context.Context, tenant, owner string, part []byte) error
	// Dequeue removes the queued record seq and, if dead is not nil, stores
	// dead in the "dead" bucket in the same transaction. It reports whether
	// the record was still queued (if not, dead is not stored).
	Dequeue(ctx context.Context, tenant string, seq uint64, dead *Record) (bool, error)
	// SwapQueued replaces the sealed value of queued record seq by value only
	// if it is still old.
	SwapQueued(ctx context.Context, tenant string, seq uint64, old, value []byte) (bool, error)
}

// Record is a sealed record as a Backend keeps it.
type Record struct {
	Key   []byte
	Value []byte // sealed; opaque to the backend
	// T1 and T2 are the record's clear-text times (Unix nanoseconds): for an
	// answer, stored-at and not-after (0 = none).
	T1, T2 int64
}

// Queued is a sealed queued write as a Backend keeps it.
type Queued struct {
	Seq uint64 // assigned by Append
	// Partition is the HMAC of the message's partition: the unit of order and of leases.
	Partition []byte
	// IdempotencyKey is the HMAC of the message's idempotency key, unique among queued records.
	IdempotencyKey []byte
	Value          []byte // sealed; opaque to the backend
	EnqueuedAt     int64  // Unix nanoseconds
}
