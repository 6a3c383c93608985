package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// exactOutbox returns the queue size and dead letter count as the database
// holds them (Stats always asks the backend).
func exactOutbox(t *testing.T, st *cache.Store) (pending, dead int) {
	t.Helper()
	s, err := st.Stats(bg)
	require.NoError(t, err)
	return s.Outbox.Pending, s.Outbox.DeadLetters
}

// deadLetter queues one message and has it rejected for good.
func deadLetter(t *testing.T, st *cache.Store, key string) cache.DeadLetter {
	t.Helper()
	ob := st.Outbox()
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: key, Partition: "p", Service: "svc", Payload: []byte("payload " + key)}))
	res, err := ob.Replay(bg, func(context.Context, cache.Message) error { return cache.Permanent(errors.New("rejected")) })
	require.NoError(t, err)
	require.Equal(t, 1, res.DeadLettered)
	dl, err := ob.DeadLetters(bg)
	require.NoError(t, err)
	for _, d := range dl {
		if d.IdempotencyKey == key {
			return d
		}
	}
	t.Fatalf("no dead letter %s", key)
	return cache.DeadLetter{}
}

// Requeue on PostgreSQL is one transaction: when either of its two steps
// fails (made to fail here by a trigger, as a constraint or an outage would),
// the dead letter stays dead and nothing is queued; when both succeed it is
// queued and no longer dead. A requeue whose idempotency key is pending again
// only removes the dead letter.
func TestPostgres_RequeueIsOneTransaction(t *testing.T) {
	u := freshSchema(t)
	db, err := pgstore.Open(bg, pgstore.Config{URL: u})
	require.NoError(t, err)
	defer db.Close()
	conn, err := pgx.Connect(bg, u)
	require.NoError(t, err)
	defer conn.Close(bg)
	_, err = conn.Exec(bg, `CREATE FUNCTION ehgate_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
	require.NoError(t, err)

	st, err := cache.Open(storeConfig(cachetest.Tenant("requeue"), db))
	require.NoError(t, err)
	defer st.Close()
	d := deadLetter(t, st, "w1")

	for _, step := range []struct{ table, when string }{
		{"ehgate_record", "BEFORE DELETE ON ehgate_record FOR EACH ROW WHEN (OLD.bucket = 'dead')"}, // the removal of the dead letter fails
		{"ehgate_queue", "BEFORE INSERT ON ehgate_queue FOR EACH ROW"},                              // its queueing fails
	} {
		_, err = conn.Exec(bg, `CREATE TRIGGER refuse `+step.when+` EXECUTE FUNCTION ehgate_test_refuse()`)
		require.NoError(t, err)
		require.ErrorIs(t, st.Outbox().Requeue(bg, d.Seq), cache.ErrUnavailable)
		pending, dead := exactOutbox(t, st)
		require.Equal(t, 0, pending, "nothing queued when %s refuses", step.table)
		require.Equal(t, 1, dead, "still dead when %s refuses", step.table)
		_, err = conn.Exec(bg, `DROP TRIGGER refuse ON `+step.table)
		require.NoError(t, err)
	}

	require.NoError(t, st.Outbox().Requeue(bg, d.Seq))
	require.Equal(t, 1, st.Outbox().Pending())
	pending, dead := exactOutbox(t, st)
	require.Equal(t, [2]int{1, 0}, [2]int{pending, dead})
	require.ErrorIs(t, st.Outbox().Requeue(bg, d.Seq), cache.ErrNotFound)
	var got []string
	_, err = st.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, m.IdempotencyKey+"="+string(m.Payload))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"w1=payload w1"}, got)

	// Its idempotency key pending again: the dead letter is only removed.
	d = deadLetter(t, st, "w2")
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w2", Partition: "p", Service: "svc", Payload: []byte("new")}))
	require.NoError(t, st.Outbox().Requeue(bg, d.Seq))
	require.Equal(t, 1, st.Outbox().Pending())
	pending, dead = exactOutbox(t, st)
	require.Equal(t, [2]int{1, 0}, [2]int{pending, dead})
}

// The conformance suite through cache.Backend alone: the Store's paths for a
// backend without the optional capabilities behave the same.
func TestPostgres_ConformanceBackendOnly(t *testing.T) {
	db := openDB(t)
	be := plainBackend{db} // hides every optional capability (PutBatch, Requeue)
	_, batch := cache.Backend(be).(cache.BatchBackend)
	_, requeue := cache.Backend(be).(cache.RequeueBackend)
	require.False(t, batch || requeue)
	cachetest.Run(t, cachetest.Harness{
		Open: func(t *testing.T, cfg cache.Config, opts ...cache.Option) (*cache.Store, error) {
			cfg.Backend = be
			return cache.Open(cfg, opts...)
		},
		Raw: rawTenant,
	})
}

// queueCountingDB counts the queue-size queries a Store makes.
type queueCountingDB struct {
	*pgstore.DB
	stats atomic.Int64
}

func (c *queueCountingDB) QueueStats(ctx context.Context, tenant string) (int, int64, int64, error) {
	c.stats.Add(1)
	return c.DB.QueueStats(ctx, tenant)
}

// Pending on a backend is cheap: the Store counts its own enqueues and
// deliveries, so a thousand calls (a replay's progress reports, a status
// page) cost at most one COUNT per second; another instance's enqueues show
// once the figure is a second old; Stats is exact and refreshes it.
func TestFleet_PendingCountedWithoutAQueryPerCall(t *testing.T) {
	tenant := cachetest.Tenant("pending")
	cdb := &queueCountingDB{DB: openDB(t)}
	cfg := storeConfig(tenant, nil)
	cfg.Backend = cdb
	a, err := cache.Open(cfg)
	require.NoError(t, err)
	defer a.Close()
	b, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer b.Close()

	start := time.Now()
	cdb.stats.Store(0)
	allowed := func() int64 { return 1 + int64(time.Since(start)/time.Second) } // one at the start, then one per second at most
	for i := range 10 {
		require.NoError(t, a.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("a", i), Partition: "p", Service: "svc", Payload: []byte("x")}))
	}
	for range 1000 {
		require.Equal(t, 10, a.Outbox().Pending())
	}
	require.LessOrEqual(t, cdb.stats.Load(), allowed())

	var seen []int // Pending at each send: one partition, so one send at a time
	_, err = a.Outbox().Replay(bg, func(context.Context, cache.Message) error {
		seen = append(seen, a.Outbox().Pending())
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, seen, "its own deliveries counted as they happen")
	require.Equal(t, 0, a.Outbox().Pending())
	require.LessOrEqual(t, cdb.stats.Load(), allowed())

	for i := range 5 {
		require.NoError(t, b.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("b", i), Service: "svc", Payload: []byte("y")}))
	}
	require.Eventually(t, func() bool { return a.Outbox().Pending() == 5 }, 20*time.Second, 10*time.Millisecond,
		"another instance's enqueues show once the figure is a second old")

	_, err = b.Outbox().Replay(bg, func(context.Context, cache.Message) error { return nil })
	require.NoError(t, err)
	pending, _ := exactOutbox(t, a)
	require.Equal(t, 0, pending)
	require.Equal(t, 0, a.Outbox().Pending(), "Stats refreshed the figure")
}
