package connector

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
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
