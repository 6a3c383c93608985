package cache_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

// deferredConfig never commits deferred answers on its own within a test
// (an hour of linger): what the tests see comes from Flush, a durable write
// or Close, not from timing.
func deferredConfig(dir string) cache.Config {
	cfg := testConfig(dir)
	cfg.DeferredFlush = time.Hour
	return cfg
}

func stats(t *testing.T, st *cache.Store) cache.Stats {
	t.Helper()
	s, err := st.Stats(bg)
	require.NoError(t, err)
	return s
}

// A deferred Put returns before any commit, Get sees it at once, and Close
// commits it: it is read back from the file after a reopen.
func TestPut_DeferredReadableAtOnceCommittedAtClose(t *testing.T) {
	dir := t.TempDir()
	st, err := cache.Open(deferredConfig(dir))
	require.NoError(t, err)
	before := stats(t, st).Commits

	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("answer-1"), cache.Deferred()))
	e, err := st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, []byte("answer-1"), e.Value)
	s := stats(t, st)
	require.Equal(t, before, s.Commits, "a deferred Put commits nothing by itself")
	require.Equal(t, 1, s.DeferredPending)
	require.NoError(t, st.Close())

	st = openTest(t, deferredConfig(dir))
	e, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err, "Close committed the deferred answer")
	require.Equal(t, []byte("answer-1"), e.Value)
	require.Zero(t, stats(t, st).DeferredFailed)
}

// N deferred Puts in quick succession make one commit at Flush (or ride
// along with the next durable write), not N; every one is on disk after.
func TestPut_DeferredGroupsCommits(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	st, err := cache.Open(deferredConfig(dir))
	require.NoError(t, err)
	before := stats(t, st).Commits

	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 3 {
				k := fmt.Sprintf("g%d-%05d", g, i)
				require.NoError(t, st.Put(bg, cache.FunctionInsurability, k, []byte("v-"+k), cache.Deferred()))
			}
		}()
	}
	wg.Wait()
	s := stats(t, st)
	require.Equal(t, before, s.Commits)
	require.Equal(t, n, s.DeferredPending)
	require.NoError(t, st.Flush(bg))
	s = stats(t, st)
	require.Equal(t, before+1, s.Commits, "%d deferred Puts, one commit", n)
	require.Zero(t, s.DeferredPending)

	// A durable write commits the deferred answers waiting before it, in its own commit.
	for i := range 50 {
		require.NoError(t, st.Put(bg, cache.FunctionETK, strconv.Itoa(i), []byte("etk"), cache.Deferred()))
	}
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "m1", Service: "s", Payload: []byte("p")}))
	s = stats(t, st)
	require.Equal(t, before+2, s.Commits)
	require.Zero(t, s.DeferredPending)
	require.NoError(t, st.Close())

	st = openTest(t, deferredConfig(dir))
	for g := range 3 {
		for i := range n / 3 {
			k := fmt.Sprintf("g%d-%05d", g, i)
			e, err := st.Get(bg, cache.FunctionInsurability, k)
			require.NoError(t, err, k)
			require.Equal(t, []byte("v-"+k), e.Value)
		}
	}
	for i := range 50 {
		_, err := st.Get(bg, cache.FunctionETK, strconv.Itoa(i))
		require.NoError(t, err)
	}
}

// With the default linger the writer commits deferred answers by itself.
func TestPut_DeferredCommittedByTheWriter(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.DeferredFlush = time.Millisecond
	st := openTest(t, cfg)
	before := stats(t, st).Commits
	for i := range 20 {
		require.NoError(t, st.Put(bg, cache.FunctionInsurability, strconv.Itoa(i), []byte("v"), cache.Deferred()))
	}
	require.Eventually(t, func() bool { return stats(t, st).DeferredPending == 0 }, time.Minute, time.Millisecond)
	s := stats(t, st)
	require.Greater(t, s.Commits, before)
	require.LessOrEqual(t, s.Commits, before+20)
}

// Durable and deferred writes of one answer, one after the other: the file
// ends with the last one, whichever kind each was.
func TestPut_DeferredOrderWithDurableWrites(t *testing.T) {
	dir := t.TempDir()
	st, err := cache.Open(deferredConfig(dir))
	require.NoError(t, err)
	ctx := bg
	fn := cache.FunctionInsurability
	require.NoError(t, st.Put(ctx, fn, "a", []byte("a-deferred"), cache.Deferred()))
	require.NoError(t, st.Put(ctx, fn, "a", []byte("a-durable")))
	require.NoError(t, st.Put(ctx, fn, "b", []byte("b-durable")))
	require.NoError(t, st.Put(ctx, fn, "b", []byte("b-deferred"), cache.Deferred()))
	require.NoError(t, st.Put(ctx, fn, "c", []byte("c-deferred"), cache.Deferred()))
	require.NoError(t, st.Delete(ctx, fn, "c"))
	for k, want := range map[string]string{"a": "a-durable", "b": "b-deferred"} {
		e, err := st.Get(ctx, fn, k)
		require.NoError(t, err)
		require.Equal(t, want, string(e.Value))
	}
	_, err = st.Get(ctx, fn, "c")
	require.ErrorIs(t, err, cache.ErrNotFound)
	require.NoError(t, st.Close())

	st = openTest(t, deferredConfig(dir))
	for k, want := range map[string]string{"a": "a-durable", "b": "b-deferred"} {
		e, err := st.Get(ctx, fn, k)
		require.NoError(t, err)
		require.Equal(t, want, string(e.Value))
	}
	_, err = st.Get(ctx, fn, "c")
	require.ErrorIs(t, err, cache.ErrNotFound)
}

func TestPut_DeferredAfterClose(t *testing.T) {
	st, err := cache.Open(deferredConfig(t.TempDir()))
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("x"), cache.Deferred()), cache.ErrClosed)
	require.ErrorIs(t, st.Flush(bg), cache.ErrClosed)
}

func TestConfig_DeferredFlushNegative(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.DeferredFlush = -time.Millisecond
	require.ErrorContains(t, cfg.Validate(), "Config.DeferredFlush")
}

const deferredChildEnv = "EHGATE_CACHE_DEFERRED_CHILD"

// TestCrash_KillNineAfterDeferredFlush: a child stores deferred answers,
// flushes, says so, and goes on storing deferred answers until SIGKILL.
// Every answer stored before an acknowledged Flush is in the file; the file
// opens and authenticates whatever else made it.
func TestCrash_KillNineAfterDeferredFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	dir := t.TempDir()
	cmd, lines := child(t, "deferred", dir, deferredChildEnv+"=1")
	var flushed []string
	for l := range lines {
		if k, ok := strings.CutPrefix(l, "F "); ok {
			flushed = append(flushed, k)
			if len(flushed) == 5 {
				require.NoError(t, cmd.Process.Kill())
				break
			}
		}
	}
	for range lines {
	}
	killed(t, cmd)
	require.Len(t, flushed, 5, "the child acknowledged five flushes")

	answers, _, _ := outboxOf(t, dir)
	for _, last := range flushed {
		// Every key up to the last one of that flush is there.
		round, n, _ := strings.Cut(last, "/")
		count, err := strconv.Atoi(n)
		require.NoError(t, err)
		for i := 0; i <= count; i++ {
			k := fmt.Sprintf("%s/%06d", round, i)
			require.Equal(t, crashValue(k), answers[k], "flushed answer %s survived SIGKILL", k)
		}
	}
}

// deferredChild is the writing child of TestCrash_KillNineAfterDeferredFlush.
func deferredChild(st *cache.Store) {
	w := bufio.NewWriter(os.Stdout)
	for round := 0; ; round++ {
		last := ""
		for i := range 200 {
			k := fmt.Sprintf("d%03d/%06d", round, i)
			if err := st.Put(bg, cache.FunctionInsurability, k, crashValue(k), cache.Deferred()); err != nil {
				fmt.Fprintln(os.Stderr, "put:", err)
				os.Exit(4)
			}
			last = k
		}
		if err := st.Flush(bg); err != nil {
			fmt.Fprintln(os.Stderr, "flush:", err)
			os.Exit(5)
		}
		_, _ = w.WriteString("F " + last + "\n")
		_ = w.Flush() // one write(2), after Flush returned
		// Deferred answers never flushed: what SIGKILL may take.
		for i := range 50 {
			k := fmt.Sprintf("x%03d/%06d", round, i)
			_ = st.Put(bg, cache.FunctionInsurability, k, crashValue(k), cache.Deferred())
		}
	}
}
