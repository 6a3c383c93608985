package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

func fastReplay(cfg cache.Config) cache.Config {
	cfg.Outbox = cache.OutboxConfig{InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	return cfg
}

func TestOutbox_ReplayKeepsOrderWithinPartitionAndRetries(t *testing.T) {
	clk := newTestClock()
	dir := t.TempDir()
	st, err := cache.Open(fastReplay(testConfig(dir)), cache.WithClock(clk.Now))
	require.NoError(t, err)
	ob := st.Outbox()
	for i := range 30 {
		require.NoError(t, ob.Enqueue(bg, cache.Message{
			IdempotencyKey: fmt.Sprintf("w-%02d", i), Partition: fmt.Sprintf("p%d", i%3),
			Service: "mycarenettarification:v1", Payload: fmt.Appendf(nil, "payload %d", i),
		}))
		clk.Advance(time.Second)
	}
	// Enqueueing a pending key again adds nothing.
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "w-00", Partition: "p0", Payload: []byte("dup")}))
	require.Equal(t, 30, ob.Pending())
	require.Equal(t, 30*time.Second, ob.OldestAge())
	require.NoError(t, st.Close()) // and it is all durable

	st = openTest(t, fastReplay(testConfig(dir)), cache.WithClock(clk.Now))
	ob = st.Outbox()
	require.Equal(t, 30, ob.Pending())

	var mu sync.Mutex
	got := map[string][]string{}
	fails := map[string]int{}
	res, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if fails[m.IdempotencyKey] < 2 && m.IdempotencyKey[len(m.IdempotencyKey)-1] == '5' {
			fails[m.IdempotencyKey]++
			require.Equal(t, fails[m.IdempotencyKey]-1, m.Attempts)
			return errors.New("platform unreachable")
		}
		var i int
		_, _ = fmt.Sscanf(string(m.Payload), "payload %d", &i)
		require.Equal(t, fmt.Sprintf("w-%02d", i), m.IdempotencyKey)
		require.Equal(t, "mycarenettarification:v1", m.Service)
		got[m.Partition] = append(got[m.Partition], m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, cache.ReplayResult{Delivered: 30, Retries: 6}, res)
	for p := range 3 {
		var want []string
		for i := p; i < 30; i += 3 {
			want = append(want, fmt.Sprintf("w-%02d", i))
		}
		require.Equal(t, want, got[fmt.Sprintf("p%d", p)])
	}
	require.Equal(t, 0, ob.Pending())
	require.Equal(t, time.Duration(0), ob.OldestAge())
}

func TestOutbox_PermanentRejectionGoesToDeadLetters(t *testing.T) {
	clk := newTestClock()
	st := openTest(t, fastReplay(testConfig(t.TempDir())), cache.WithClock(clk.Now))
	ob := st.Outbox()
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: k, Partition: "p", Service: "svc", Payload: []byte(k)}))
	}
	var order []string
	res, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		order = append(order, m.IdempotencyKey)
		if m.IdempotencyKey == "b" {
			return fmt.Errorf("status 400 invalid nomenclature code: %w", cache.ErrPermanent)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, order, "a dead letter does not block its partition")
	require.Equal(t, cache.ReplayResult{Delivered: 2, DeadLettered: 1}, res)
	require.Equal(t, 0, ob.Pending())

	dls, err := ob.DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, "b", dls[0].IdempotencyKey)
	require.Equal(t, []byte("b"), dls[0].Payload)
	require.Equal(t, 1, dls[0].Attempts)
	require.Contains(t, dls[0].Reason, "invalid nomenclature code")
	require.Equal(t, clk.Now(), dls[0].DeadAt.UTC())
	stats, err := st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, 1, stats.Outbox.DeadLetters)

	// Requeue after the vendor fixed it; Permanent() works as well as wrapping.
	require.NoError(t, ob.Requeue(bg, dls[0].Seq))
	require.Equal(t, 1, ob.Pending())
	res, err = ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		return cache.Permanent(errors.New("still wrong"))
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.DeadLettered)
	dls, err = ob.DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.NoError(t, ob.Discard(bg, dls[0].Seq))
	require.Equal(t, 0, ob.DeadLetterCount())
	require.ErrorIs(t, ob.Discard(bg, dls[0].Seq), cache.ErrNotFound)
}

func TestOutbox_ReplayStopsWithContextAndGivesUpAfterMaxElapsed(t *testing.T) {
	cfg := fastReplay(testConfig(t.TempDir()))
	cfg.Outbox.MaxElapsed = 20 * time.Millisecond
	st := openTest(t, cfg)
	ob := st.Outbox()
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "x", Payload: []byte("1")}))
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "y", Partition: "other", Payload: []byte("2")}))

	down := errors.New("connection refused")
	res, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		if m.IdempotencyKey == "x" {
			return down
		}
		return nil
	})
	require.ErrorIs(t, err, down)
	require.Equal(t, 1, res.Delivered, "the other partition was delivered")
	require.Equal(t, 1, ob.Pending())

	ctx, cancel := context.WithCancel(bg)
	res, err = ob.Replay(ctx, func(ctx context.Context, m cache.Message) error {
		cancel()
		return ctx.Err()
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 0, res.Delivered)
	require.Equal(t, 1, ob.Pending())
}

func TestOutbox_ConcurrentEnqueuesShareCommits(t *testing.T) {
	st := openTest(t, testConfig(t.TempDir()))
	ob := st.Outbox()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: fmt.Sprintf("g%d-%d", g, i), Partition: fmt.Sprint(g), Payload: []byte("x")}))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 200, ob.Pending())
	var mu sync.Mutex
	seen := map[string]bool{}
	_, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		mu.Lock()
		defer mu.Unlock()
		require.False(t, seen[m.IdempotencyKey])
		seen[m.IdempotencyKey] = true
		return nil
	})
	require.NoError(t, err)
	require.Len(t, seen, 200)
}

func ExampleOutbox() {
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := cache.Open(cache.Config{
		Dir:    dir,
		Keys:   []cache.Key{{ID: "2026-11", Secret: bytes.Repeat([]byte{0x42}, 32)}},
		Outbox: cache.OutboxConfig{InitialBackoff: time.Millisecond},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ob := st.Outbox()

	// During an outage: queue the writes (each returns once on disk).
	for i, body := range []string{"dispensation 1", "dispensation 2", "bad code"} {
		_ = ob.Enqueue(ctx, cache.Message{
			IdempotencyKey: fmt.Sprintf("ref-%d", i), Partition: "patient-hash-1",
			Service: "mycarenettarification:v1", Payload: []byte(body),
		})
	}
	fmt.Println("pending:", ob.Pending())

	// Back online: replay in order; the platform rejects one for good.
	attempts := 0
	res, err := ob.Replay(ctx, func(ctx context.Context, m cache.Message) error {
		attempts++
		if attempts == 1 {
			return errors.New("connection refused") // transient: retried after a backoff
		}
		if string(m.Payload) == "bad code" {
			return cache.Permanent(errors.New("status 400: unknown nomenclature code"))
		}
		fmt.Println("sent", m.IdempotencyKey, string(m.Payload))
		return nil
	})
	fmt.Println(res.Delivered, res.DeadLettered, res.Retries, err)
	dls, _ := ob.DeadLetters(ctx)
	fmt.Println("dead letter:", dls[0].IdempotencyKey, dls[0].Reason)
	// Output:
	// pending: 3
	// sent ref-0 dispensation 1
	// sent ref-1 dispensation 2
	// 2 1 1 <nil>
	// dead letter: ref-2 status 400: unknown nomenclature code
}

func TestOutbox_OneReplayAtATime(t *testing.T) {
	st := openTest(t, fastReplay(testConfig(t.TempDir())))
	ob := st.Outbox()
	require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: "w", Payload: []byte("x")}))
	inSend, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
			close(inSend)
			<-release
			return nil
		})
		done <- err
	}()
	<-inSend
	_, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error { return nil })
	require.ErrorIs(t, err, cache.ErrReplaying)
	close(release)
	require.NoError(t, <-done)
	require.Zero(t, ob.Pending())
}
