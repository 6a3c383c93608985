package cache_test

// The harness shared by the tests of this package: an injected clock, test
// keys and configuration, and a store closed at the end of the test.

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

// testClock is an injected clock the tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKey(id string, fill byte) cache.Key {
	return cache.Key{ID: id, Secret: bytes.Repeat([]byte{fill}, 32)}
}

func testConfig(dir string) cache.Config {
	return cache.Config{
		Dir:           dir,
		Tenant:        "pharmacy-1",
		Keys:          []cache.Key{testKey("k1", 1)},
		PurgeInterval: -1,
	}
}

func openTest(t *testing.T, cfg cache.Config, opts ...cache.Option) *cache.Store {
	t.Helper()
	st, err := cache.Open(cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

var bg = context.Background()
