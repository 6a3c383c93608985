package connector

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// fleetDB opens the test database named by EHGATE_TEST_POSTGRES_URL, or skips.
func fleetDB(t *testing.T) *pgstore.DB {
	t.Helper()
	u := os.Getenv("EHGATE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
	}
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: u})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db
}

// fleetConfig is the configuration of one instance of a fleet: every instance has the same
// identity, keys, tenant and database, and no directory.
func fleetConfig(t *testing.T, p *platformtest.Platform, id *platformtest.Identity, db *pgstore.DB, tenant string, key []byte) Config {
	cfg := testConfig(t, p, id)
	cfg.CacheDir = ""
	cfg.CacheKeys = [][]byte{key}
	cfg.StoreBackend = db
	cfg.StoreTenant = tenant
	return cfg
}

// Two instances on one database: the second starts with the token and the service list the
// first obtained (no STS request, the service list server refusing), and serves in fallback
// the answer the first stored.
func TestFleet_InstancesShareAnswersTokenAndServiceList(t *testing.T) {
	p, id := testPlatform(t)
	t.Cleanup(func() { p.Site(platformtest.ControlSite).Clear("") })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("pharmacy")
	ctx := context.Background()
	pt := patients(p, 1)[0]

	a, err := New(fleetConfig(t, p, id, fleetDB(t), tenant, key), WithClock(newTestClock()), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer a.Close()
	live, err := a.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, live.Source)
	stsRequests := p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK)

	p.Site(platformtest.ControlSite).Inject(platformtest.ServiceList, platformtest.Fault{Kind: platformtest.FaultRefuse})
	b, err := New(fleetConfig(t, p, id, fleetDB(t), tenant, key), WithClock(newTestClock()), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, bcp.ListFromStore, b.loader.Source(), "the list the first instance stored in the database")
	require.True(t, b.Status().Token.Valid, "the token the first instance stored in the database")
	require.Equal(t, stsRequests, p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK), "no STS request for the second instance")

	require.NoError(t, b.ActivateFallback(ServiceInsurability, "fleet test"))
	n := counts(p, platformtest.ServiceInsurability)
	// a stores live answers deferred: in the database within milliseconds of its call.
	var res InsurabilityResult
	require.Eventually(t, func() bool {
		res, err = b.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "a's answer served by b")
	require.Equal(t, SourceCache, res.Source)
	require.Equal(t, live.AsOf.Unix(), res.AsOf.Unix())
	require.Equal(t, live.Answer.PaymentApproval, res.Answer.PaymentApproval)
	require.Equal(t, n, counts(p, platformtest.ServiceInsurability), "answered from the database, not the network")
}

// Twenty instances of one pharmacy start at once on an empty database: their token
// providers wait for each other on the database's renewal lock, and the STS sees one
// request. The claim holds while every waiter gets the lock within its token request timeout
// (2 × Timeouts.Attempt) and every query within pgstore's QueryTimeout: past those a waiter
// asks the STS itself (availability first, sts.ProviderConfig.RenewalLock). The twenty
// waiters take the lock one after another (each loads and verifies the stored token), which
// on a loaded machine exceeded the default 10 s once: the test gives both timeouts a minute.
func TestFleet_TwentyInstancesOneSTSRequest(t *testing.T) {
	p, id := testPlatform(t)
	u := os.Getenv("EHGATE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
	}
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: u, QueryTimeout: time.Minute})
	require.NoError(t, err)
	t.Cleanup(db.Close)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("twenty")
	before := p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK)
	clients := make([]*Client, 20)
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := fleetConfig(t, p, id, db, tenant, key)
			cfg.Timeouts.Attempt = 30 * time.Second // the lock wait: 2 × Attempt
			clients[i], errs[i] = New(cfg, WithClock(newTestClock()), WithLogger(zap.NewNop()))
		}()
	}
	wg.Wait()
	for i, c := range clients {
		require.NoError(t, errs[i])
		defer c.Close()
	}
	require.Eventually(t, func() bool {
		for _, c := range clients {
			if !c.Status().Token.Valid {
				return false
			}
		}
		return true
	}, 3*time.Minute, 20*time.Millisecond, "every instance has the token")
	ref := clients[0].tokens.Current().ID
	for _, c := range clients {
		require.Equal(t, ref, c.tokens.Current().ID, "one token for the fleet")
	}
	require.Equal(t, 1, p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK)-before, "one STS request for twenty instances")
}

// The database is unreachable from the start: the client starts, live calls and live writes
// go on (the token is obtained, only not stored), and what needs the store says why it cannot
// be served: a fallback read fails with cache.ErrUnavailable, a write the platform does not
// take is refused as "neither delivered nor queued", never silently dropped.
func TestFleet_DatabaseDownLiveCallsGoOn(t *testing.T) {
	fleetDB(t) // skip without a test database, as every fleet test
	p, id := testPlatform(t)
	t.Cleanup(func() {
		for _, s := range p.Sites() {
			s.Clear("")
		}
	})
	down, err := pgstore.Open(context.Background(), pgstore.Config{URL: "postgres://ehgate@127.0.0.1:1/ehgate?connect_timeout=1", QueryTimeout: time.Second})
	require.NoError(t, err, "opening does not need the database")
	defer down.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c, err := New(fleetConfig(t, p, id, down, cachetest.Tenant("down"), key), WithClock(newTestClock()), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	pt := patients(p, 1)[0]

	res, err := c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err, "a live call needs no database")
	require.Equal(t, SourceLive, res.Source)
	r, err := c.SendMessage(ctx, testMessage("", pt.SSIN, []byte("live write")))
	require.NoError(t, err)
	require.True(t, r.Delivered)

	require.NoError(t, c.ActivateFallback(ServiceInsurability, "test"))
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrNotCached)
	require.ErrorIs(t, err, cache.ErrUnavailable, "the answer says why the store could not serve it")
	require.NotContains(t, err.Error(), pt.SSIN)

	for _, s := range p.Sites() {
		s.Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	r, err = c.SendMessage(ctx, testMessage("", pt.SSIN, []byte("queued write")))
	require.ErrorIs(t, err, cache.ErrUnavailable)
	require.ErrorContains(t, err, "nor queued")
	require.False(t, r.Queued || r.Delivered)
}

// downableBackend is a fleet's shared backend whose record reads can be made to fail as a
// database that cannot be reached fails.
type downableBackend struct {
	cache.Backend
	down atomic.Bool
}

func (b *downableBackend) Get(ctx context.Context, tenant, bucket string, key []byte) ([]byte, error) {
	if b.down.Load() {
		return nil, fmt.Errorf("%w: test: database down", cache.ErrUnavailable)
	}
	return b.Backend.Get(ctx, tenant, bucket, key)
}

// An instance of a fleet serves a decoded answer from memory for at most FleetMemoMaxAge,
// then reads the shared store again: the newer answer another instance stored is served.
// While the database cannot be read, the answer in memory is served all the same.
func TestFleet_NewerAnswerOfAnotherInstanceServedAfterFleetMemoMaxAge(t *testing.T) {
	db := fleetDB(t)
	p, id := testPlatform(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("memo")
	ctx := context.Background()
	pt := patients(p, 1)[0]
	req := InsurabilityRequest{SSIN: pt.SSIN}

	shared := &downableBackend{Backend: db}
	cfgA := fleetConfig(t, p, id, db, tenant, key)
	cfgA.StoreBackend = shared
	clockA, clockB := newTestClock(), newTestClock()
	a, err := New(cfgA, WithClock(clockA), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer a.Close()
	b, err := New(fleetConfig(t, p, id, db, tenant, key), WithClock(clockB), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer b.Close()

	first, err := a.Insurability(ctx, req)
	require.NoError(t, err)
	require.Equal(t, SourceLive, first.Source)
	clockB.Advance(2 * time.Second)
	newer, err := b.Insurability(ctx, req)
	require.NoError(t, err)
	require.Equal(t, SourceLive, newer.Source)
	require.True(t, newer.AsOf.After(first.AsOf))
	require.NoError(t, b.store.Flush(ctx))
	require.NoError(t, a.store.Flush(ctx)) // a's own answer flushed after b's: b's, newer, stays

	require.NoError(t, a.ActivateFallback(ServiceInsurability, "fleet memo test"))
	clockA.Advance(FleetMemoMaxAge / 2)
	res, err := a.Insurability(ctx, req)
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.Equal(t, first.AsOf.UnixNano(), res.AsOf.UnixNano(), "within FleetMemoMaxAge: a's own answer, from memory")

	clockA.Advance(FleetMemoMaxAge)
	shared.down.Store(true)
	res, err = a.Insurability(ctx, req)
	require.NoError(t, err, "the database down: the answer in memory is served")
	require.Equal(t, first.AsOf.UnixNano(), res.AsOf.UnixNano())
	shared.down.Store(false)

	res, err = a.Insurability(ctx, req)
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.Equal(t, newer.AsOf.UnixNano(), res.AsOf.UnixNano(), "past FleetMemoMaxAge: b's newer answer, from the shared store")
}
