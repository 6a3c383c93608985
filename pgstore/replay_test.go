package pgstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A partition whose remaining entries all fail authentication (a row
// altered in the database) does not keep Replay claiming it for ever: Replay
// delivers the rest, skips and keeps the altered entry, and returns.
func TestPostgres_ReplayReturnsWhenOnlyUnreadableEntriesRemain(t *testing.T) {
	tenant := cachetest.Tenant("unreadable")
	st, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer st.Close()
	for _, k := range []string{"a1", "b1", "b2"} {
		require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: k, Partition: k[:1], Payload: []byte(k)}))
	}
	conn, err := pgx.Connect(bg, testURL(t))
	require.NoError(t, err)
	defer conn.Close(bg)
	tag, err := conn.Exec(bg, `UPDATE ehgate_queue SET value = overlay(value placing '\x0000'::bytea from length(value) - 1)
		WHERE tenant = $1 AND seq = (SELECT min(seq) FROM ehgate_queue WHERE tenant = $1)`, tenant)
	require.NoError(t, err)
	require.Equal(t, int64(1), tag.RowsAffected())

	ctx, cancel := context.WithTimeout(bg, 2*time.Minute) // a cap for a regression that loops, not a timing claim
	defer cancel()
	var (
		mu   sync.Mutex // Replay delivers partitions concurrently
		sent []string
	)
	res, err := st.Outbox().Replay(ctx, func(_ context.Context, m cache.Message) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err, "Replay returns by itself")
	require.Equal(t, []string{"b1", "b2"}, sent)
	require.GreaterOrEqual(t, res.Skipped, 1)
	require.Equal(t, 1, st.Outbox().Pending(), "kept as evidence")
}
