package connector

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/platformtest"
)

// storeFile returns the store's file in dir (the only .db file).
func storeFile(t *testing.T, dir string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.db"))
	require.NoError(t, err)
	require.Len(t, m, 1, "%v", m)
	return m[0]
}

// newLoggedClient starts a client on cfg with an observed logger and the test clock.
func newLoggedClient(t *testing.T, cfg Config) (*Client, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	c, err := New(cfg, WithClock(newTestClock()), WithLogger(zap.New(core)))
	require.NoError(t, err, "a store that cannot be opened never stops the client")
	t.Cleanup(func() { c.Close() })
	return c, logs
}

// warmStore makes one live answer for pt and closes the client, leaving a store file.
func warmStore(t *testing.T, cfg Config, pt platformtest.Patient) {
	t.Helper()
	c, _ := newLoggedClient(t, cfg)
	_, err := c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// The store can never stop the client (issue 17 item 7): a truncated file is moved aside and
// a fresh store started (default) or left alone (DamagedStoreLeave); a file under another key
// is never touched. Live calls work in every case; without a store the fallback says it has
// none; Status says why; the error is logged once.
func TestNew_StoreFailureNeverStopsLiveCalls(t *testing.T) {
	p, id := testPlatform(t)
	pt := patients(p, 1)[0]
	ctx := context.Background()
	live := func(t *testing.T, c *Client) {
		t.Helper()
		res, err := c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
		require.Equal(t, SourceLive, res.Source)
	}
	errorLogs := func(logs *observer.ObservedLogs) int { return logs.FilterLevelExact(zap.ErrorLevel).Len() }

	t.Run("truncated, start fresh", func(t *testing.T) {
		cfg := testConfig(t, p, id)
		warmStore(t, cfg, pt)
		f := storeFile(t, cfg.CacheDir)
		require.NoError(t, os.Truncate(f, 100))
		c, logs := newLoggedClient(t, cfg)
		st := c.Status().Store
		require.True(t, st.Available)
		require.NotEmpty(t, st.MovedTo)
		require.Contains(t, st.Reason, "moved aside")
		moved, err := os.Stat(st.MovedTo)
		require.NoError(t, err)
		require.EqualValues(t, 100, moved.Size(), "the damaged file is kept for the data owner")
		require.Equal(t, 1, errorLogs(logs), "logged once")
		live(t, c)
		require.NoError(t, c.ActivateFallback(ServiceInsurability, "check the fresh store"))
		res, err := c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err, "the fresh store holds the live answer")
		require.Equal(t, SourceCache, res.Source)
	})

	t.Run("truncated, left alone", func(t *testing.T) {
		cfg := testConfig(t, p, id)
		cfg.DamagedStore = DamagedStoreLeave
		warmStore(t, cfg, pt)
		f := storeFile(t, cfg.CacheDir)
		require.NoError(t, os.Truncate(f, 100))
		c, logs := newLoggedClient(t, cfg)
		st := c.Status().Store
		require.False(t, st.Available)
		require.Empty(t, st.MovedTo)
		require.Contains(t, st.Reason, "corrupt")
		require.Equal(t, 1, errorLogs(logs))
		live(t, c)
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.EqualValues(t, 100, fi.Size(), "left as it was")

		for _, s := range p.Sites() {
			s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
			s.Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultRefuse})
		}
		defer func() {
			for _, s := range p.Sites() {
				s.Clear("")
			}
		}()
		_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.ErrorIs(t, err, ErrNotCached)
		require.ErrorIs(t, err, ErrNoStore, "the fallback says it has no store")
		_, err = c.SendMessage(ctx, testMessage("", "", []byte("claim")))
		require.ErrorIs(t, err, ErrNoStore, "a write that cannot be delivered cannot be queued either")
		_, err = c.Purge(ctx)
		require.ErrorIs(t, err, ErrNoStore)
		require.Equal(t, 1, errorLogs(logs), "still logged once")
	})

	t.Run("wrong key, never touched", func(t *testing.T) {
		cfg := testConfig(t, p, id)
		warmStore(t, cfg, pt)
		f := storeFile(t, cfg.CacheDir)
		before, err := os.ReadFile(f)
		require.NoError(t, err)
		other := make([]byte, 32)
		_, _ = rand.Read(other)
		cfg.CacheKeys = [][]byte{other}
		c, logs := newLoggedClient(t, cfg)
		st := c.Status().Store
		require.False(t, st.Available)
		require.Contains(t, st.Reason, "unknown key")
		require.Equal(t, 1, errorLogs(logs))
		live(t, c)
		require.NoError(t, c.Close())
		after, err := os.ReadFile(f)
		require.NoError(t, err)
		require.True(t, bytes.Equal(before, after), "the file under another key is not touched")
		m, _ := filepath.Glob(filepath.Join(cfg.CacheDir, "*.db*"))
		require.Len(t, m, 1, "nothing moved aside: %v", m)
	})
}

// An operator's fallback activation (with its reason) and the answers waiting to be checked
// again survive a restart (issue 17 item 8).
func TestClient_OperatorFallbackAndRegularisationSurviveARestart(t *testing.T) {
	p, id := testPlatform(t)
	pt := patients(p, 1)[0]
	ctx := context.Background()
	cfg := testConfig(t, p, id)
	cfg.StatusFeedURL = ""

	c1, _ := newLoggedClient(t, cfg)
	_, err := c1.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.NoError(t, c1.ActivateFallback(ServiceInsurability, "maintenance window 14:00"))
	res, err := c1.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	require.Equal(t, 1, regularisationPending(c1, ServiceInsurability))
	require.NoError(t, c1.Close())

	c2, _ := newLoggedClient(t, cfg)
	m, cause := c2.Mode(ServiceInsurability)
	require.Equal(t, ModeFallback, m)
	require.Contains(t, cause, "maintenance window 14:00")
	var operator string
	for _, s := range c2.Status().Services {
		if s.Name == ServiceInsurability {
			operator = s.Operator
		}
	}
	require.Equal(t, "maintenance window 14:00", operator)
	require.Equal(t, 1, regularisationPending(c2, ServiceInsurability), "the answer served before the restart is still to be checked")

	require.NoError(t, c2.EndFallback(ServiceInsurability))
	waitFor(t, "the regularisation after the restart", func() bool {
		rep, ok := c2.Regularisation(ServiceInsurability)
		return ok && rep.Checked == 1 && rep.Unchanged == 1
	})
	require.Zero(t, regularisationPending(c2, ServiceInsurability))
	require.NoError(t, c2.Close())

	// Ended and checked: a third start remembers neither.
	c3, _ := newLoggedClient(t, cfg)
	m, _ = c3.Mode(ServiceInsurability)
	require.Equal(t, ModeNormal, m)
	require.Zero(t, regularisationPending(c3, ServiceInsurability))
}

// liveContext keeps a reserve before the caller's deadline, and leaves the policy's timeout
// alone when the caller's deadline is further away.
func TestLiveContext_BudgetsTheCallersDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	lctx, lcancel, caller := liveContext(ctx, time.Second)
	defer lcancel()
	require.False(t, caller)
	d, _ := lctx.Deadline()
	require.WithinDuration(t, time.Now().Add(time.Second), d, 500*time.Millisecond)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	lctx2, lcancel2, caller2 := liveContext(ctx2, 10*time.Second)
	defer lcancel2()
	require.True(t, caller2)
	d2, _ := lctx2.Deadline()
	cd, _ := ctx2.Deadline()
	require.InDelta(t, float64(300*time.Millisecond), float64(cd.Sub(d2)), float64(10*time.Millisecond), "a tenth of the time left")

	_, lcancel3, caller3 := liveContext(context.Background(), time.Second)
	defer lcancel3()
	require.False(t, caller3)
}
