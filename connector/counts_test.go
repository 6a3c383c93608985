package connector

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache/cachetest"
)

// TestStatus_StoreCountsReusedWithinTheirBound: Status counts the store's records at most once
// per StoreCountsMaxAge (a scrape every second does not read every record every second),
// says when it counted, counts again once the bound has passed or after an operation of this
// client that changes the store as a whole; a local outbox's figures are exact every time.
func TestStatus_StoreCountsReusedWithinTheirBound(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 3)
	stored := func(st Status) int { return st.Cache.Functions[functionInsurability].Count }

	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	first := env.c.Status()
	require.Equal(t, 1, stored(first))
	require.Equal(t, first.At, first.CountedAt)

	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[1].SSIN})
	require.NoError(t, err)
	env.clock.Advance(StoreCountsMaxAge / 2) // the test clock also moves with real time
	second := env.c.Status()
	require.Equal(t, 1, stored(second), "counted less than StoreCountsMaxAge ago: not counted again")
	require.Equal(t, first.CountedAt, second.CountedAt)
	require.GreaterOrEqual(t, second.At.Sub(second.CountedAt), StoreCountsMaxAge/2)

	env.clock.Advance(StoreCountsMaxAge / 2)
	third := env.c.Status()
	require.Equal(t, 2, stored(third), "the bound has passed: counted again")
	require.Equal(t, third.At, third.CountedAt)

	_, err = env.c.Insurability(ctx, InsurabilityRequest{SSIN: pts[2].SSIN})
	require.NoError(t, err)
	_, err = env.c.Purge(ctx) // deletes nothing this young, but the store changed as a whole
	require.NoError(t, err)
	purged := env.c.Status()
	require.Equal(t, 3, stored(purged), "counted again after Purge")

	// The local outbox's figures are counters: exact at every Status.
	require.NoError(t, env.c.ActivateFallback(ServiceEHealthBox, "counts test"))
	r, err := env.c.SendMessage(ctx, testMessage("", pts[0].SSIN, []byte("queued")))
	require.NoError(t, err)
	require.True(t, r.Queued)
	st := env.c.Status()
	require.Equal(t, 1, st.Outbox.Pending)
	require.Equal(t, purged.CountedAt, st.CountedAt, "the store's counts are not counted again for the outbox")
}

// With a shared StoreBackend the outbox's dead letters and oldest age cost queries: an
// instance counts them at most once per StoreCountsMaxAge, so another instance's queued write
// ages there within that bound; Pending is the outbox's own figure (about a second fresh).
func TestFleet_StatusCountsAnotherInstancesWriteWithinTheBound(t *testing.T) {
	p, id := testPlatform(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("counts")
	ctx := context.Background()
	db := fleetDB(t)
	a, err := New(fleetConfig(t, p, id, db, tenant, key), WithClock(newTestClock()), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer a.Close()
	bClock := newTestClock()
	b, err := New(fleetConfig(t, p, id, db, tenant, key), WithClock(bClock), WithLogger(zap.NewNop()))
	require.NoError(t, err)
	defer b.Close()
	for _, c := range []*Client{a, b} { // neither replays the write: it stays queued
		require.NoError(t, c.ActivateFallback(ServiceEHealthBox, "counts test"))
	}
	st0 := b.Status()
	require.Zero(t, st0.Outbox.OldestAge)

	r, err := a.SendMessage(ctx, testMessage("", patients(p, 1)[0].SSIN, []byte("queued")))
	require.NoError(t, err)
	require.True(t, r.Queued)
	require.Equal(t, 1, a.Status().Outbox.Pending, "the instance's own write shows at once")
	require.Greater(t, a.Status().Outbox.OldestAge, time.Duration(0))
	st := b.Status()
	require.Zero(t, st.Outbox.OldestAge, "another instance's write: not counted again yet")
	require.Equal(t, st0.CountedAt, st.CountedAt)
	bClock.Advance(StoreCountsMaxAge)
	st = b.Status()
	require.Greater(t, st.Outbox.OldestAge, time.Duration(0), "counted again once the bound has passed")
	require.Equal(t, st.At, st.CountedAt)
	require.Eventually(t, func() bool { return b.Status().Outbox.Pending == 1 }, 10*time.Second, 10*time.Millisecond)
}
