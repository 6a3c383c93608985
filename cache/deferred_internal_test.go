package cache

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A deferred answer whose commit fails is not dropped silently: it is
// counted in Stats.DeferredFailed and logged at error level without the key
// or the value, Flush reports it, and Get still serves it from memory.
func TestPut_DeferredFailureCountedAndLogged(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s, err := Open(Config{Dir: t.TempDir(), Tenant: "t", Keys: []Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}},
		PurgeInterval: -1, DeferredFlush: time.Hour}, WithLogger(zap.New(core)))
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const key, value = "85073003328", "answer-of-the-patient"

	broken := errors.New("disk gone")
	s.damaged.Store(&broken) // every commit from now on fails
	require.NoError(t, s.Put(ctx, FunctionInsurability, key, []byte(value), Deferred()))
	err = s.Flush(ctx)
	require.ErrorIs(t, err, broken, "the flush's own commit fails too")

	st, err := s.Stats(ctx)
	require.ErrorIs(t, err, broken)
	require.Equal(t, uint64(1), st.DeferredFailed)
	require.Zero(t, st.DeferredPending)
	e, err := s.Get(ctx, FunctionInsurability, key)
	require.NoError(t, err, "the answer stays in memory")
	require.Equal(t, value, string(e.Value))

	found := false
	for _, l := range logs.All() {
		all := l.Message
		for k, v := range l.ContextMap() {
			all += " " + k + "=" + toString(v)
		}
		require.NotContains(t, all, key)
		require.NotContains(t, all, value)
		if l.Level == zap.ErrorLevel && l.Message == "cache: deferred answers not stored" {
			found = true
			require.Equal(t, FunctionInsurability, l.ContextMap()["function"])
		}
	}
	require.True(t, found, "the failure is logged")
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// The writer is woken once per batch of deferred answers, not once per Put
// (a live call stores one answer: a wake-up each was a goroutine switch per
// call); an answer handed off after the writer took the others wakes it
// again, so none waits without a commit coming. (A Backend's flusher follows
// the same rule; pgstore's deferred tests cover it.)
func TestPut_DeferredWakesTheWriterOncePerBatch(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), Tenant: "t", Keys: []Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}},
		PurgeInterval: -1, DeferredFlush: time.Hour}
	s, err := Open(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	put := func(i int) {
		require.NoError(t, s.Put(ctx, FunctionInsurability, "k"+strconv.Itoa(i), []byte("v"), Deferred()))
	}
	for i := range 100 {
		put(i)
	}
	require.Equal(t, uint64(1), s.deferq.wakes.Load(), "100 hand-offs while the writer is armed")
	require.NoError(t, s.Flush(ctx)) // takes the queue: the next hand-off must wake the writer
	put(100)
	require.Equal(t, uint64(2), s.deferq.wakes.Load())
	require.NoError(t, s.Close())

	s, err = Open(cfg)
	require.NoError(t, err)
	defer s.Close()
	for i := range 101 {
		_, err := s.Get(ctx, FunctionInsurability, "k"+strconv.Itoa(i))
		require.NoError(t, err, "answer %d committed", i)
	}
}
