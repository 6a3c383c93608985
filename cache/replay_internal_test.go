package cache

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// A queued entry damaged while the Store is open (so it authenticated at
// Open and sits in its partition) is skipped and kept, and Replay still
// returns once the other entries are delivered: claiming its partition again
// would go round for ever.
func TestReplay_ReturnsWhenOnlyUnreadableEntriesRemain(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), Tenant: "t", Keys: []Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}},
		PurgeInterval: -1, Outbox: OutboxConfig{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	for _, k := range []string{"a1", "b1", "a2"} {
		require.NoError(t, s.Outbox().Enqueue(ctx, Message{IdempotencyKey: k, Partition: k[:1], Payload: []byte(k)}))
	}
	// Damage a1 (seq 1) in place.
	require.NoError(t, s.write(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		v := bytes.Clone(b.Get(seqKey(1)))
		v[len(v)-1] ^= 1
		return b.Put(seqKey(1), v)
	}, nil))
	var (
		mu   sync.Mutex // Replay delivers partitions concurrently
		sent []string
	)
	res, err := s.Outbox().Replay(ctx, func(_ context.Context, m Message) error {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"b1", "a2"}, sent)
	require.Equal(t, 2, res.Delivered)
	require.GreaterOrEqual(t, res.Skipped, 1)
	require.Equal(t, 1, s.Outbox().Pending(), "kept as evidence")
}
