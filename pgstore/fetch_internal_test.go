package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

func internalDB(t *testing.T) *DB {
	t.Helper()
	u := os.Getenv("EHGATE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
	}
	db, err := Open(context.Background(), Config{URL: u})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db
}

func uniqueTenant(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// One grouped read answers each waiting Get with its own record: records of
// other tenants and buckets under the same key are not mixed up, a key asked
// twice in one group is answered twice, and a key with no record gets nil.
func TestPostgres_GroupedGetAnswersEachCaller(t *testing.T) {
	ctx := context.Background()
	db := internalDB(t)
	ta, tb := uniqueTenant("ga"), uniqueTenant("gb")
	put := func(tenant, bucket, key, value string) {
		require.NoError(t, db.Put(ctx, tenant, bucket, cache.Record{Key: []byte(key), Value: []byte(value), T1: 1}))
	}
	put(ta, "a:x", "k1", "ta x k1")
	put(ta, "a:y", "k1", "ta y k1")
	put(tb, "a:x", "k1", "tb x k1")
	put(tb, "a:y", "k2", "tb y k2")

	cases := []struct{ tenant, bucket, key, want string }{
		{ta, "a:x", "k1", "ta x k1"},
		{ta, "a:y", "k1", "ta y k1"},
		{tb, "a:x", "k1", "tb x k1"},
		{ta, "a:x", "missing", ""},
		{ta, "a:x", "k1", "ta x k1"}, // the same key twice in one group
		{tb, "a:y", "k2", "tb y k2"},
		{tb, "a:y", "k1", ""},
		{uniqueTenant("gc"), "a:x", "k1", ""},
	}
	for _, size := range []int{1, 2, len(cases)} {
		t.Run(fmt.Sprint("group of ", size), func(t *testing.T) {
			batch := make([]*getOp, size)
			for i := range batch {
				c := cases[i]
				batch[i] = &getOp{tenant: c.tenant, bucket: c.bucket, key: []byte(c.key), done: make(chan struct{})}
			}
			db.fetch(batch)
			for i, op := range batch {
				<-op.done // closed by fetch
				require.NoError(t, op.err, "case %d", i)
				if cases[i].want == "" {
					require.Nil(t, op.value, "case %d has no record", i)
				} else {
					require.Equal(t, cases[i].want, string(op.value), "case %d", i)
				}
			}
		})
	}

	// Through Get, from many goroutines at once (grouped as they arrive).
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				c := cases[(g+i)%len(cases)]
				v, err := db.Get(ctx, c.tenant, c.bucket, []byte(c.key))
				if err != nil {
					errs <- err
					return
				}
				if string(v) != c.want || (c.want == "" && v != nil) {
					errs <- fmt.Errorf("goroutine %d read %q where %q was expected", g, v, c.want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// A grouped read that cannot reach the database fails every Get of the group
// with ErrUnavailable; a Get whose context ends, or on a closed DB, says so.
func TestPostgres_GroupedGetFailures(t *testing.T) {
	ctx := context.Background()
	// Port 1 on loopback: nothing listens there, so connecting fails at once.
	down, err := Open(ctx, Config{URL: "postgres://u:p@127.0.0.1:1/none?sslmode=disable", ConnectTimeout: time.Second, QueryTimeout: time.Second})
	require.NoError(t, err, "Open does not need the database")
	defer down.Close()
	for _, size := range []int{1, 3} {
		batch := make([]*getOp, size)
		for i := range batch {
			batch[i] = &getOp{tenant: "t", bucket: "a:x", key: []byte{byte(i)}, done: make(chan struct{})}
		}
		down.fetch(batch)
		for _, op := range batch {
			require.ErrorIs(t, op.err, cache.ErrUnavailable)
			require.Nil(t, op.value)
		}
	}

	db := internalDB(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = db.Get(cctx, "t", "a:x", []byte("k"))
	require.ErrorIs(t, err, context.Canceled)
	db.Close()
	_, err = db.Get(ctx, "t", "a:x", []byte("k"))
	require.ErrorIs(t, err, cache.ErrClosed)
}
