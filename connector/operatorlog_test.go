package connector

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache/cachetest"
)

// The operator log keeps the last MaxOperatorActions actions, oldest first, cuts over-long
// fields on a character boundary, and dates an undated action by the client's clock.
func TestOperatorLog_BoundedOldestDropped(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	require.NoError(t, env.c.RecordOperatorAction(ctx, OperatorAction{Operator: "op", Action: "drill", Target: "0", Result: "ok"}))
	// A full log as an earlier run left it (one record; recording 200 actions one by one
	// would only make the test slower).
	full, err := env.c.OperatorActions(ctx)
	require.NoError(t, err)
	for i := 1; i < MaxOperatorActions; i++ {
		full = append(full, OperatorAction{At: full[0].At, Operator: "op", Action: "drill", Target: fmt.Sprint(i), Result: "ok"})
	}
	raw, err := json.Marshal(full)
	require.NoError(t, err)
	require.NoError(t, env.c.store.Put(ctx, functionState, stateOperatorLog, raw))
	for i := MaxOperatorActions; i < MaxOperatorActions+3; i++ {
		require.NoError(t, env.c.RecordOperatorAction(ctx, OperatorAction{Operator: "op", Action: "drill", Target: fmt.Sprint(i), Result: "ok"}))
	}
	long := strings.Repeat("é", maxActionReason) // two bytes each
	require.NoError(t, env.c.RecordOperatorAction(ctx, OperatorAction{Operator: "op", Action: "activate fallback", Reason: long, Result: "ok"}))
	log, err := env.c.OperatorActions(ctx)
	require.NoError(t, err)
	require.Len(t, log, MaxOperatorActions)
	require.Equal(t, "4", log[0].Target, "the oldest were dropped")
	last := log[len(log)-1]
	require.Len(t, last.Reason, maxActionReason)
	require.True(t, strings.HasPrefix(long, last.Reason))
	require.False(t, last.At.IsZero())
	require.NoError(t, env.c.Close())
	require.ErrorIs(t, env.c.RecordOperatorAction(ctx, OperatorAction{Operator: "op"}), ErrClosed)
}

// Two instances of a fleet (one database) record operator actions at the same time: every
// action is kept, and each instance reads all of them.
func TestFleet_OperatorActionsOfTwoInstancesAllKept(t *testing.T) {
	db := fleetDB(t)
	p, id := testPlatform(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("operators")
	ctx := context.Background()
	var clients []*Client
	for range 2 {
		c, err := New(fleetConfig(t, p, id, db, tenant, key), WithClock(newTestClock()), WithLogger(zap.NewNop()))
		require.NoError(t, err)
		defer c.Close()
		clients = append(clients, c)
	}
	const each = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				errs <- c.RecordOperatorAction(ctx, OperatorAction{Operator: fmt.Sprint("op", i), Action: "drill", Target: fmt.Sprint(j), Result: "ok"})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, c := range clients {
		log, err := c.OperatorActions(ctx)
		require.NoError(t, err)
		require.Len(t, log, 2*each, "no action lost")
		seen := map[string]int{}
		for _, a := range log {
			require.Equal(t, fmt.Sprint(seen[a.Operator]), a.Target, "each instance's actions in its order")
			seen[a.Operator]++
		}
		require.Equal(t, map[string]int{"op0": each, "op1": each}, seen)
	}
}
