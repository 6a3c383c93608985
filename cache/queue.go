package cache

import (
	"context"
	"time"
)

// queue is the outbox's queue as the Store's outbox logic sees it, whatever
// keeps it: a Backend's queue (backendQueue: records sealed to their
// idempotency key's HMAC, since the database draws sequence numbers at
// commit; partitions leased across the fleet) or the file's (fileBackend:
// records sealed to their sequence number, so that entries swapped on disk
// fail authentication; one process, so leases are held in memory).
type queue interface {
	// append queues each draft whose idempotency key is not queued yet and
	// returns its sequence number (0 for a draft skipped), in draft order.
	append(ctx context.Context, ds []draft) ([]uint64, error)
	// aad returns what the seal of a queued record is bound to.
	aad(q Queued) []byte
	// entries returns up to limit queued records above after, of partition
	// part (all partitions when part is nil), in sequence order.
	entries(ctx context.Context, part []byte, after uint64, limit int) ([]Queued, error)
	// stats counts the queued records, the enqueued-at of the oldest and their bytes.
	stats(ctx context.Context) (count int, oldest int64, bytes int64, err error)
	claim(ctx context.Context, owner string, lease time.Duration, max int) ([][]byte, error)
	renew(ctx context.Context, owner string, part []byte, lease time.Duration) (bool, error)
	release(ctx context.Context, owner string, part []byte) error
	// dequeue removes record seq and stores dead (if not nil) in the same
	// transaction; false if seq was no longer queued.
	dequeue(ctx context.Context, seq uint64, dead *Record) (bool, error)
	swap(ctx context.Context, seq uint64, old, value []byte) (bool, error)
	nextSeq(ctx context.Context) (uint64, error)
}

// draft is a message on its way into the queue: seal seals its encoded
// message bound to the key the queue binds records to (see queue.aad).
type draft struct {
	part, ik []byte
	enq      int64
	seal     func(key []byte) []byte
}

// backendQueue is a Backend's queue for one tenant.
type backendQueue struct {
	be     Backend
	tenant string
}

func (b backendQueue) append(ctx context.Context, ds []draft) ([]uint64, error) {
	qs := make([]Queued, len(ds))
	for i, d := range ds {
		qs[i] = Queued{Partition: d.part, IdempotencyKey: d.ik, Value: d.seal(d.ik), EnqueuedAt: d.enq}
	}
	seqs, err := b.be.Append(ctx, b.tenant, qs)
	if err == nil && len(seqs) != len(ds) {
		err = ErrUnavailable
	}
	return seqs, err
}

func (backendQueue) aad(q Queued) []byte { return q.IdempotencyKey }

func (b backendQueue) entries(ctx context.Context, part []byte, after uint64, limit int) ([]Queued, error) {
	return b.be.Queue(ctx, b.tenant, part, after, limit)
}

func (b backendQueue) stats(ctx context.Context) (int, int64, int64, error) {
	return b.be.QueueStats(ctx, b.tenant)
}

func (b backendQueue) claim(ctx context.Context, owner string, lease time.Duration, max int) ([][]byte, error) {
	return b.be.Claim(ctx, b.tenant, owner, lease, max)
}

func (b backendQueue) renew(ctx context.Context, owner string, part []byte, lease time.Duration) (bool, error) {
	return b.be.Renew(ctx, b.tenant, owner, part, lease)
}

func (b backendQueue) release(ctx context.Context, owner string, part []byte) error {
	return b.be.Release(ctx, b.tenant, owner, part)
}

func (b backendQueue) dequeue(ctx context.Context, seq uint64, dead *Record) (bool, error) {
	return b.be.Dequeue(ctx, b.tenant, seq, dead)
}

func (b backendQueue) swap(ctx context.Context, seq uint64, old, value []byte) (bool, error) {
	return b.be.SwapQueued(ctx, b.tenant, seq, old, value)
}

func (b backendQueue) nextSeq(ctx context.Context) (uint64, error) { return b.be.NextSeq(ctx) }

// requeueBackendQueue is the queue of a RequeueBackend.
type requeueBackendQueue struct {
	backendQueue
	rb RequeueBackend
}

func (b requeueBackendQueue) requeue(ctx context.Context, deadKey []byte, d draft) (uint64, bool, error) {
	return b.rb.Requeue(ctx, b.tenant, deadKey, Queued{Partition: d.part, IdempotencyKey: d.ik, Value: d.seal(d.ik), EnqueuedAt: d.enq})
}
