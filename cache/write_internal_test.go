package cache

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// A write handed to the committer returns the caller's context error as soon
// as that context ends, even while the commit is stuck; the write itself is
// not withdrawn and is committed once the committer can go on.
func TestStore_WriteReturnsWhenContextEndsAfterHandover(t *testing.T) {
	s, err := Open(Config{Dir: t.TempDir(), Tenant: "t", Keys: []Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, PurgeInterval: -1})
	require.NoError(t, err)
	defer s.Close()

	entered, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		returned <- s.write(ctx, func(tx *bolt.Tx) error {
			close(entered) // the committer owns the write now, and is stuck in it
			<-release
			b, err := tx.CreateBucketIfNotExists([]byte("x"))
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte("v"))
		}, nil)
	}()
	<-entered
	cancel()
	select {
	case err := <-returned:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second): // a cap so that a regression fails instead of hanging
		close(release)
		t.Fatal("write did not return when its context ended")
	}

	close(release)
	// The next write is committed after the abandoned one: it was committed too.
	require.NoError(t, s.write(context.Background(), func(*bolt.Tx) error { return nil }, nil))
	require.NoError(t, s.view(func(tx *bolt.Tx) error {
		require.NotNil(t, tx.Bucket([]byte("x")))
		require.Equal(t, []byte("v"), tx.Bucket([]byte("x")).Get([]byte("k")))
		return nil
	}))
}
