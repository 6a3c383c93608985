package pgstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// lateCommitBackend runs its first Append in a transaction of its own that it
// leaves open: the record has drawn its sequence number but is not visible
// until commit is called, as when another instance's commit is slow.
type lateCommitBackend struct {
	*pgstore.DB
	conn   *pgx.Conn
	mu     sync.Mutex
	tx     pgx.Tx
	opened bool
}

func (b *lateCommitBackend) Append(ctx context.Context, tenant string, qs []cache.Queued) ([]uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.opened {
		return b.DB.Append(ctx, tenant, qs)
	}
	b.opened = true
	tx, err := b.conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	var seq int64
	q := qs[0]
	if err := tx.QueryRow(ctx, `INSERT INTO ehgate_queue (tenant, part, idem, value, enqueued_at) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
		tenant, q.Partition, q.IdempotencyKey, q.Value, q.EnqueuedAt).Scan(&seq); err != nil {
		return nil, err
	}
	b.tx = tx
	return []uint64{uint64(seq)}, nil
}

func (b *lateCommitBackend) commit(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	require.NoError(t, b.tx.Commit(bg))
}

// Sequence numbers are drawn before commit: producer X's first write (lower
// number) becomes visible only after the replay has read producer Y's write
// (higher number), and X queues its second write after its first one
// committed. The replay delivers X's writes in X's order, not X's second
// write first and the first one in a later round.
func TestFleet_LateCommitKeepsProducerOrder(t *testing.T) {
	conn, err := pgx.Connect(bg, testURL(t))
	require.NoError(t, err)
	defer conn.Close(bg)
	be := &lateCommitBackend{DB: openDB(t), conn: conn}
	cfg := storeConfig(cachetest.Tenant("late"), be.DB)
	cfg.Backend = be
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	defer st.Close()
	ob := st.Outbox()

	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "x-1", Partition: "p", Service: "svc", Payload: []byte("x1")}))
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "y-1", Partition: "p", Service: "svc", Payload: []byte("y1")}))
	var got []string
	_, err = ob.Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, m.IdempotencyKey)
		if m.IdempotencyKey == "y-1" {
			be.commit(t)
			require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "x-2", Partition: "p", Service: "svc", Payload: []byte("x2")}))
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"y-1", "x-1", "x-2"}, got)
	require.Equal(t, 0, ob.Pending())
}
