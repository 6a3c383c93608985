package pgstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/stretchr/testify/require"
)

// countingDB counts the writes the Store makes to the database.
type countingDB struct {
	*pgstore.DB
	puts, batches, batched atomic.Int64
}

func (c *countingDB) Put(ctx context.Context, tenant, bucket string, r cache.Record) error {
	c.puts.Add(1)
	return c.DB.Put(ctx, tenant, bucket, r)
}

func (c *countingDB) PutBatch(ctx context.Context, tenant string, recs []cache.BucketRecord) error {
	c.batches.Add(1)
	c.batched.Add(int64(len(recs)))
	return c.DB.PutBatch(ctx, tenant, recs)
}

// plainBackend hides PutBatch: a Backend without the capability.
type plainBackend struct{ cache.Backend }

// Deferred Puts on PostgreSQL: readable at once (before any write), written
// together in one statement per flush (one commit for N answers), read by
// another instance after Flush, written at Close; a durable Delete after a
// deferred Put wins.
func TestPostgres_DeferredPut(t *testing.T) {
	const n = 200
	db := &countingDB{DB: openDB(t)}
	tenant := cachetest.Tenant("deferred")
	cfg := storeConfig(tenant, nil)
	cfg.Backend = db
	cfg.DeferredFlush = time.Hour // only Flush and Close write: nothing depends on timing
	a, err := cache.Open(cfg)
	require.NoError(t, err)
	b, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer b.Close()
	puts0 := db.puts.Load()

	for i := range n {
		k := fmt.Sprintf("%011d", i)
		require.NoError(t, a.Put(bg, cache.FunctionInsurability, k, []byte("v"+k), cache.Deferred()))
		e, err := a.Get(bg, cache.FunctionInsurability, k)
		require.NoError(t, err, "readable at once")
		require.Equal(t, []byte("v"+k), e.Value)
	}
	require.Equal(t, puts0, db.puts.Load())
	require.Zero(t, db.batches.Load())
	st, err := a.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, n, st.DeferredPending)
	_, err = b.Get(bg, cache.FunctionInsurability, fmt.Sprintf("%011d", 0))
	require.ErrorIs(t, err, cache.ErrNotFound, "not in the database before the flush")

	require.NoError(t, a.Flush(bg))
	require.Equal(t, int64(1), db.batches.Load(), "%d deferred answers, one statement", n)
	require.Equal(t, int64(n), db.batched.Load())
	for i := range n {
		k := fmt.Sprintf("%011d", i)
		e, err := b.Get(bg, cache.FunctionInsurability, k)
		require.NoError(t, err)
		require.Equal(t, []byte("v"+k), e.Value)
	}

	require.NoError(t, a.Put(bg, cache.FunctionInsurability, "gone", []byte("x"), cache.Deferred()))
	require.NoError(t, a.Delete(bg, cache.FunctionInsurability, "gone"))
	require.NoError(t, a.Put(bg, cache.FunctionInsurability, "later", []byte("at close"), cache.Deferred()))
	require.NoError(t, a.Close())
	_, err = b.Get(bg, cache.FunctionInsurability, "gone")
	require.ErrorIs(t, err, cache.ErrNotFound)
	e, err := b.Get(bg, cache.FunctionInsurability, "later")
	require.NoError(t, err, "Close wrote the deferred answer")
	require.Equal(t, []byte("at close"), e.Value)
	require.Equal(t, int64(2), db.batches.Load())
	require.Zero(t, st.DeferredFailed)
}

// A Backend without PutBatch gets deferred answers one Put at a time, in the background.
func TestPostgres_DeferredPutWithoutBatch(t *testing.T) {
	tenant := cachetest.Tenant("deferred-plain")
	cfg := storeConfig(tenant, nil)
	cfg.Backend = plainBackend{openDB(t)}
	cfg.DeferredFlush = time.Hour
	a, err := cache.Open(cfg)
	require.NoError(t, err)
	defer a.Close()
	for i := range 10 {
		require.NoError(t, a.Put(bg, cache.FunctionInsurability, fmt.Sprint(i), []byte("v"), cache.Deferred()))
	}
	require.NoError(t, a.Flush(bg))
	b, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer b.Close()
	for i := range 10 {
		_, err := b.Get(bg, cache.FunctionInsurability, fmt.Sprint(i))
		require.NoError(t, err)
	}
}

// A deferred answer flushed after another instance stored a newer answer for the same key
// leaves the newer one in place, with PutBatch and without it.
func TestFleet_LateDeferredAnswerNeverReplacesANewerOne(t *testing.T) {
	for _, tc := range []struct {
		name string
		be   func() cache.Backend
	}{
		{"batch", func() cache.Backend { return openDB(t) }},
		{"plain", func() cache.Backend { return plainBackend{openDB(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := cachetest.Tenant("late-" + tc.name)
			cfg := storeConfig(tenant, nil)
			cfg.Backend = tc.be()
			cfg.DeferredFlush = time.Hour // only Flush writes
			a, err := cache.Open(cfg)
			require.NoError(t, err)
			defer a.Close()
			b, err := cache.Open(storeConfig(tenant, openDB(t)))
			require.NoError(t, err)
			defer b.Close()
			t0 := time.Now().Add(-time.Minute)
			require.NoError(t, a.Put(bg, cache.FunctionInsurability, "k", []byte("older, from a"), cache.Deferred(), cache.StoredAt(t0)))
			require.NoError(t, b.Put(bg, cache.FunctionInsurability, "k", []byte("newer, from b"), cache.StoredAt(t0.Add(time.Second))))
			require.NoError(t, a.Put(bg, cache.FunctionInsurability, "k2", []byte("only a's"), cache.Deferred(), cache.StoredAt(t0)))
			require.NoError(t, a.Flush(bg))
			e, err := b.Get(bg, cache.FunctionInsurability, "k")
			require.NoError(t, err)
			require.Equal(t, "newer, from b", string(e.Value), "a's late flush kept b's newer answer")
			e, err = b.Get(bg, cache.FunctionInsurability, "k2")
			require.NoError(t, err)
			require.Equal(t, "only a's", string(e.Value), "the rest of the batch written")
		})
	}
}
