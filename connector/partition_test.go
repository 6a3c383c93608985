package connector

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A write queues only behind writes of its own partition: with partition A's write waiting
// in the outbox (service back, replay not yet run), a write of partition B goes live and a
// write of A queues behind A's; the replay then delivers A's in order, each exactly once.
func TestClient_SubmitQueuesOnlyBehindItsOwnPartition(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 2)
	a, b := pts[0].SSIN, pts[1].SSIN

	require.NoError(t, env.c.ActivateFallback(ServiceEHealthBox, "test outage"))
	env.waitMode(t, ServiceEHealthBox, ModeFallback)
	a1, err := env.c.SendMessage(ctx, testMessage("", a, []byte("a1")))
	require.NoError(t, err)
	require.True(t, a1.Queued)
	bQueued, err := env.c.SendMessage(ctx, testMessage("", b, []byte("b0")))
	require.NoError(t, err)
	require.True(t, bQueued.Queued, "in fallback every write queues")

	env.c.replayRun.Lock() // the replay waits: A's and B's writes stay queued
	unlocked := false
	defer func() {
		if !unlocked {
			env.c.replayRun.Unlock()
		}
	}()
	require.NoError(t, env.c.EndFallback(ServiceEHealthBox))
	env.waitMode(t, ServiceEHealthBox, ModeRecovering) // back, the replay not yet run
	require.Equal(t, 2, env.c.Status().Outbox.Pending)

	c1, err := env.c.SendMessage(ctx, testMessage("", "other patient", []byte("c1")))
	require.NoError(t, err)
	require.True(t, c1.Delivered, "a partition with nothing queued goes live")
	a2, err := env.c.SendMessage(ctx, testMessage("", a, []byte("a2")))
	require.NoError(t, err)
	require.True(t, a2.Queued, "A's write waits behind A's queued write")
	b1, err := env.c.SendMessage(ctx, testMessage("", b, []byte("b1")))
	require.NoError(t, err)
	require.True(t, b1.Queued, "B's write waits behind B's queued write")
	own, err := env.c.SendMessage(ctx, testMessage("", "", []byte("no partition")))
	require.NoError(t, err)
	require.True(t, own.Delivered, "a write without partition orders with nothing")
	require.Equal(t, 4, env.c.Status().Outbox.Pending)

	unlocked = true
	env.c.replayRun.Unlock()
	env.c.kickReplay()
	env.waitEvent(t, "replay done", func(ev Event) bool { return ev.Kind == EventReplay && ev.Replay.Done && ev.Replay.Pending == 0 })
	env.waitMode(t, ServiceEHealthBox, ModeNormal)

	// Once the outbox is empty, every partition goes live again.
	a3, err := env.c.SendMessage(ctx, testMessage("", a, []byte("a3")))
	require.NoError(t, err)
	require.True(t, a3.Delivered)

	pos := map[string]int{}
	seen := map[string]int{}
	for i, w := range env.p.Writes() {
		seen[w.Key]++
		pos[w.Key] = i
	}
	for _, k := range []string{a1.Key, bQueued.Key, c1.Key, a2.Key, b1.Key, own.Key, a3.Key} {
		require.Equal(t, 1, seen[k], "each write delivered exactly once")
	}
	require.Less(t, pos[c1.Key], pos[a1.Key], "B's live write went before A's queued one")
	require.Less(t, pos[a1.Key], pos[a2.Key], "A's order kept")
	require.Less(t, pos[a2.Key], pos[a3.Key], "A's order kept")
	require.Less(t, pos[bQueued.Key], pos[b1.Key], "B's order kept")
	require.Zero(t, env.c.Status().Outbox.Pending)
}

func TestPartitionTracker(t *testing.T) {
	t.Run("writes left by a previous run make every partition pending until the outbox is empty", func(t *testing.T) {
		outbox := 3
		tr := newPartitionTracker(func() int { return outbox })
		require.True(t, tr.isPending("a"))
		require.True(t, tr.isPending("b"))
		outbox = 1
		require.True(t, tr.isPending("b"), "not empty yet")
		outbox = 0
		require.False(t, tr.isPending("b"))
	})
	t.Run("counts per partition", func(t *testing.T) {
		outbox := 0
		tr := newPartitionTracker(func() int { return outbox })
		require.False(t, tr.isPending("a"))
		done := tr.adding("a")
		outbox++
		done(nil)
		done = tr.adding("a")
		outbox++
		done(nil)
		require.True(t, tr.isPending("a"))
		require.False(t, tr.isPending("b"))
		tr.left("a")
		outbox--
		require.True(t, tr.isPending("a"), "one of A's writes still queued")
		tr.left("a")
		outbox--
		require.False(t, tr.isPending("a"))
	})
	t.Run("a failed enqueue leaves nothing pending", func(t *testing.T) {
		outbox := 0
		tr := newPartitionTracker(func() int { return outbox })
		tr.adding("b")(nil)
		outbox = 1 // B's write: the outbox is not empty
		tr.adding("a")(context.Canceled)
		require.False(t, tr.isPending("a"))
		require.True(t, tr.isPending("b"))
	})
	t.Run("a count left too high by a deduplicated enqueue is cleared once the outbox is empty", func(t *testing.T) {
		outbox := 0
		tr := newPartitionTracker(func() int { return outbox })
		tr.adding("a")(nil)
		outbox = 1
		tr.adding("a")(nil) // same key: the outbox added nothing
		tr.left("a")
		outbox = 0
		tr.settle()
		require.False(t, tr.isPending("a"))
	})
	t.Run("an enqueue under way is never cleared", func(t *testing.T) {
		outbox := 0
		tr := newPartitionTracker(func() int { return outbox })
		done := tr.adding("a") // counted, not yet in the outbox
		require.True(t, tr.isPending("a"), "outbox still reads 0 but the enqueue is under way")
		outbox = 1
		done(nil)
		require.True(t, tr.isPending("a"))
		undo := tr.addingUnknown()
		outbox = 0
		require.True(t, tr.isPending("b"), "an import under way: every partition pending")
		undo()
		require.False(t, tr.isPending("b"))
	})
}
