package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

var bg = context.Background()

func storeConfig(tenant string, db *pgstore.DB) cache.Config {
	return cache.Config{
		Backend:       db,
		Tenant:        tenant,
		Keys:          []cache.Key{cachetest.Key("k1", 1)},
		PurgeInterval: -1,
		Outbox:        cache.OutboxConfig{InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Concurrency: 4},
	}
}

// freshSchema returns a connection string whose tables live in a new, empty
// schema, dropped at the end of the test.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := testURL(t)
	name := "t_" + cachetest.Tenant("s")[2:]
	conn, err := pgx.Connect(bg, base)
	require.NoError(t, err)
	defer conn.Close(bg)
	_, err = conn.Exec(bg, `CREATE SCHEMA `+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(bg, base)
		if err == nil {
			_, _ = c.Exec(bg, `DROP SCHEMA `+pgx.Identifier{name}.Sanitize()+` CASCADE`)
			_ = c.Close(bg)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Eight instances starting at once on an empty database: one migrates, the
// others wait for its advisory lock and find the schema current; a ninth
// start later changes nothing.
func TestPostgres_MigrationConcurrentAndIdempotent(t *testing.T) {
	u := freshSchema(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := pgstore.Open(bg, pgstore.Config{URL: u})
			if err == nil {
				err = db.Ping(bg)
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	db, err := pgstore.Open(bg, pgstore.Config{URL: u})
	require.NoError(t, err)
	defer db.Close()
	conn, err := pgx.Connect(bg, u)
	require.NoError(t, err)
	defer conn.Close(bg)
	var versions []int
	rows, err := conn.Query(bg, `SELECT version FROM ehgate_schema`)
	require.NoError(t, err)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{pgstore.SchemaVersion}, versions)

	// A database migrated by a newer program is refused, not altered.
	_, err = conn.Exec(bg, `UPDATE ehgate_schema SET version = version + 1`)
	require.NoError(t, err)
	_, err = pgstore.Open(bg, pgstore.Config{URL: u})
	require.ErrorContains(t, err, "newer than this program")
}

func TestPostgres_ConfigValidateNamesTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  pgstore.Config
		want string
	}{
		{pgstore.Config{}, "Config.URL is empty"},
		{pgstore.Config{URL: "postgres://h/db", MaxConns: -1}, "MaxConns"},
		{pgstore.Config{URL: "postgres://h/db", QueryTimeout: -1}, "QueryTimeout"},
		{pgstore.Config{URL: "postgres://h/db", ConnectTimeout: -1}, "ConnectTimeout"},
		{pgstore.Config{URL: "postgres://h/db", MaxBatch: -1}, "MaxBatch"},
		{pgstore.Config{URL: "postgres://user:secret@h:notaport/db"}, "Config.URL is not a valid"},
	} {
		err := c.cfg.Validate()
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), "secret")
	}
}

// An answer stored through one instance is served by another; a message
// queued through one is counted and replayed by another.
func TestFleet_InstancesShareAnswersAndOutbox(t *testing.T) {
	tenant := cachetest.Tenant("share")
	a, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer a.Close()
	b, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, a.Put(bg, cache.FunctionInsurability, "85073003328", []byte("answer from a")))
	e, err := b.Get(bg, cache.FunctionInsurability, "85073003328")
	require.NoError(t, err)
	require.Equal(t, []byte("answer from a"), e.Value)
	require.NoError(t, b.Delete(bg, cache.FunctionInsurability, "85073003328"))
	_, err = a.Get(bg, cache.FunctionInsurability, "85073003328")
	require.ErrorIs(t, err, cache.ErrNotFound, "no instance serves what another deleted")

	require.NoError(t, a.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w1", Service: "svc", Payload: []byte("p")}))
	require.NoError(t, b.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w1", Service: "svc", Payload: []byte("p")}))
	require.Equal(t, 1, b.Outbox().Pending(), "the idempotency key is unique across instances")
	var got []string
	_, err = b.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"w1"}, got)
	require.Equal(t, 0, a.Outbox().Pending())
}

// Four instances, each with its own pool, update one record at the same time,
// starting where there is none (each may write the empty seed): every update
// is applied once, none is lost, and each instance reads the final value.
func TestFleet_InstancesUpdateOneRecordWithoutLoss(t *testing.T) {
	tenant := cachetest.Tenant("update")
	const instances, each = 4, 30
	var stores []*cache.Store
	for range instances {
		st, err := cache.Open(storeConfig(tenant, openDB(t)))
		require.NoError(t, err)
		defer st.Close()
		stores = append(stores, st)
	}
	appendName := func(name string) func([]byte) ([]byte, error) {
		return func(old []byte) ([]byte, error) {
			return append(append(bytes.Clone(old), name...), ' '), nil
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, instances*each)
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				errs <- st.Update(bg, cache.FunctionInsurability, "log", appendName(fmt.Sprintf("%d.%d", i, j)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, st := range stores {
		e, err := st.Get(bg, cache.FunctionInsurability, "log")
		require.NoError(t, err)
		got := strings.Fields(string(e.Value))
		require.Len(t, got, instances*each, "no update lost")
		next := make([]int, instances) // each instance's updates in its own order
		for _, w := range got {
			var i, j int
			_, err := fmt.Sscanf(w, "%d.%d", &i, &j)
			require.NoError(t, err)
			require.Equal(t, next[i], j, "instance %d's updates applied once each, in order", i)
			next[i]++
		}
	}
}

// Three instances replay one outbox at the same time: every message is
// delivered exactly once, in order within its partition, and the partitions
// are spread over the instances.
func TestFleet_ThreeInstancesReplayOnceInOrder(t *testing.T) {
	tenant := cachetest.Tenant("three")
	var stores []*cache.Store
	for range 3 {
		st, err := cache.Open(storeConfig(tenant, openDB(t)))
		require.NoError(t, err)
		defer st.Close()
		stores = append(stores, st)
	}
	const parts, perPart = 12, 25
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPart {
				st := stores[(p+i)%3] // each partition is fed by every instance in turn
				require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprintf("p%02d-%03d", p, i), Partition: fmt.Sprintf("p%02d", p), Service: "svc", Payload: []byte{byte(i)}}))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, parts*perPart, stores[0].Outbox().Pending())

	var mu sync.Mutex
	seen := map[string]int{}
	order := map[string][]int{}
	by := map[int]int{}
	for i, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
				mu.Lock()
				defer mu.Unlock()
				seen[m.IdempotencyKey]++
				order[m.Partition] = append(order[m.Partition], int(m.Payload[0]))
				by[i]++
				return nil
			})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	// An instance returns when it can claim nothing more; whatever another
	// still held is delivered by the time every Replay returned (Stats asks
	// the database; Pending may be a second behind other instances).
	pending, _ := exactOutbox(t, stores[0])
	require.Equal(t, 0, pending)
	require.Len(t, seen, parts*perPart)
	for k, n := range seen {
		require.Equal(t, 1, n, k)
	}
	for p, o := range order {
		require.Len(t, o, perPart, p)
		for i := range o {
			require.Equal(t, i, o[i], "partition %s out of order", p)
		}
	}
	t.Logf("deliveries per instance: %v", by)
}

// An instance that dies holding a partition's lease: the others leave the
// partition alone until the lease has passed, then one takes it over and
// delivers from the oldest message still queued.
func TestFleet_DeadInstanceLeaseTakenOver(t *testing.T) {
	tenant := cachetest.Tenant("takeover")
	db := openDB(t)
	cfg := storeConfig(tenant, db)
	cfg.Outbox.Lease = 400 * time.Millisecond
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	defer st.Close()
	for i := range 5 {
		require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("w", i), Partition: "patient", Service: "svc", Payload: []byte{byte(i)}}))
	}
	// The dead instance: it claimed the partition and never came back.
	parts, err := db.Claim(bg, tenant, "dead-instance", 2*time.Second, 10)
	require.NoError(t, err)
	require.Len(t, parts, 1)

	var got []int
	send := func(_ context.Context, m cache.Message) error {
		got = append(got, int(m.Payload[0]))
		return nil
	}
	res, err := st.Outbox().Replay(bg, send)
	require.NoError(t, err)
	require.Zero(t, res.Delivered, "the partition is held by the other instance")
	require.Equal(t, 5, st.Outbox().Pending())

	require.Eventually(t, func() bool {
		_, err := st.Outbox().Replay(bg, send)
		require.NoError(t, err)
		return st.Outbox().Pending() == 0
	}, 20*time.Second, 100*time.Millisecond, "the lease passes and the partition is taken over")
	require.Equal(t, []int{0, 1, 2, 3, 4}, got)

	// An instance that stalls in a send past its lease (its send ignores the cut-off) loses
	// the partition to another one, which claims it once the lease has passed; the stalled
	// Replay then sends nothing more of it.
	for i := range 3 {
		require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprint("v", i), Partition: "patient", Service: "svc", Payload: []byte{byte(i)}}))
	}
	got = nil
	res, err = st.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, int(m.Payload[0]))
		if len(got) == 1 {
			// The stall: until another instance has claimed the partition (after the lease).
			for {
				parts, err := db.Claim(bg, tenant, "other-instance", time.Hour, 10)
				require.NoError(t, err)
				if len(parts) == 1 {
					return nil
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []int{0}, got, "no send after the lease was lost")
	require.Equal(t, 1, res.Delivered)
	require.Equal(t, 2, st.Outbox().Pending())
}

// proxy forwards TCP connections to the database and can be cut (every
// connection closed, new ones refused) and restored on the same address: a
// database outage as the client sees it.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{t: t, addr: ln.Addr().String(), target: target}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(d, c); _ = d.Close() }()
			go func() { _, _ = io.Copy(c, d); _ = c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.serve(ln)
}

// The database goes away and comes back: every call says why it cannot be
// served (ErrUnavailable, within the query timeout), nothing is reported as
// stored that was not, and the same Store works again once it is back,
// without being reopened. A Store opened while the database is down opens,
// and loads its keys when the database is back.
func TestPostgres_DatabaseDownAndBack(t *testing.T) {
	u, err := url.Parse(testURL(t))
	require.NoError(t, err)
	px := newProxy(t, u.Host)
	u.Host = px.addr
	db, err := pgstore.Open(bg, pgstore.Config{URL: u.String(), QueryTimeout: 2 * time.Second, ConnectTimeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	tenant := cachetest.Tenant("down")
	st, err := cache.Open(storeConfig(tenant, db))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "85073003328", []byte("before")))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w0", Service: "svc", Payload: []byte("0")}))
	require.Equal(t, 1, st.Outbox().Pending())

	px.cut()
	_, err = st.Get(bg, cache.FunctionInsurability, "85073003328")
	require.ErrorIs(t, err, cache.ErrUnavailable)
	require.NotErrorIs(t, err, cache.ErrNotFound)
	require.NotContains(t, err.Error(), "85073003328")
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, "85073003328", []byte("during")), cache.ErrUnavailable)
	err = st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w1", Service: "svc", Payload: []byte("1")})
	require.ErrorIs(t, err, cache.ErrUnavailable, "a write that cannot be queued says so")
	_, err = st.Outbox().Replay(bg, func(context.Context, cache.Message) error { return nil })
	require.ErrorIs(t, err, cache.ErrUnavailable)
	require.Equal(t, 1, st.Outbox().Pending(), "Pending cannot fail: the last figure it obtained")
	other, err := cache.Open(storeConfig(cachetest.Tenant("opened-down"), db))
	require.NoError(t, err, "Open does not need the database")
	defer other.Close()
	require.ErrorIs(t, other.Put(bg, cache.FunctionInsurability, "x", []byte("v")), cache.ErrUnavailable)

	px.restore()
	require.Eventually(t, func() bool {
		_, err := st.Get(bg, cache.FunctionInsurability, "85073003328")
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the same Store recovers by itself")
	e, err := st.Get(bg, cache.FunctionInsurability, "85073003328")
	require.NoError(t, err)
	require.Equal(t, []byte("before"), e.Value, "the Put refused during the outage did not happen")
	require.NoError(t, other.Put(bg, cache.FunctionInsurability, "x", []byte("v")))
	var got []string
	_, err = st.Outbox().Replay(bg, func(_ context.Context, m cache.Message) error {
		got = append(got, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"w0"}, got, "the refused Enqueue was not queued")
	require.False(t, errors.Is(err, cache.ErrUnavailable))
}

// The renewal lock is held by one instance at a time: another waits (holding no
// connection) until it is released, or gives up when its context ends.
func TestFleet_RenewalLockExcludesOtherInstances(t *testing.T) {
	a, b := openDB(t), openDB(t, func(c *pgstore.Config) { c.MaxConns = 1 })
	identity := cachetest.Tenant("sts-identity")
	unlock, err := a.LockRenewal(bg, identity)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	_, err = b.LockRenewal(ctx, identity)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "held by a")
	other, err := b.LockRenewal(bg, identity+"-other")
	require.NoError(t, err, "another identity's lock is free")
	other()

	got := make(chan func(), 1)
	go func() {
		u, err := b.LockRenewal(bg, identity)
		if err == nil {
			got <- u
		}
	}()
	require.NoError(t, b.Ping(bg), "a waiting lock holds no connection (b has one)")
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(20 * time.Second):
		t.Fatal("b never got the lock a released")
	}
}

// Purge nominates by the database's clear-text times but decides on the sealed ones: a row
// whose times were altered in the database is not deleted, and one that fails
// authentication is kept as evidence and counted.
func TestPostgres_PurgeAuthenticatesBeforeDeleting(t *testing.T) {
	tenant := cachetest.Tenant("purge-auth")
	st, err := cache.Open(storeConfig(tenant, openDB(t)))
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "85073003328", []byte("kept")))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "00000000097", []byte("garbled")))
	conn, err := pgx.Connect(bg, testURL(t))
	require.NoError(t, err)
	defer conn.Close(bg)
	_, err = conn.Exec(bg, `UPDATE ehgate_record SET t1 = 0 WHERE tenant = $1 AND bucket = 'a:insurability'`, tenant)
	require.NoError(t, err)
	// Garble one sealed value (its last byte, in the tag) as well.
	_, err = conn.Exec(bg, `UPDATE ehgate_record SET value = overlay(value placing '\xff'::bytea from octet_length(value))
		WHERE tenant = $1 AND bucket = 'a:insurability' AND key = (SELECT key FROM ehgate_record WHERE tenant = $1 AND bucket = 'a:insurability' ORDER BY key LIMIT 1)`, tenant)
	require.NoError(t, err)
	n, err := st.Purge(bg)
	require.NoError(t, err)
	require.Zero(t, n, "altered times delete nothing")
	var rows int
	require.NoError(t, conn.QueryRow(bg, `SELECT count(*) FROM ehgate_record WHERE tenant = $1 AND bucket = 'a:insurability'`, tenant).Scan(&rows))
	require.Equal(t, 2, rows, "both rows kept, the garbled one as evidence")
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.AuthFailures, "the garbled record is counted")
}
