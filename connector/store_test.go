package connector

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

func TestClient_RejectedReplayGoesToDeadLettersAndExportHoldsEverything(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)

	require.NoError(t, env.c.ActivateFallback(ServiceEHealthBox, "test"))
	bad, err := env.c.SendMessage(ctx, testMessage("dead1", "", []byte("refused")))
	require.NoError(t, err)
	require.True(t, bad.Queued)
	good, err := env.c.SendMessage(ctx, testMessage("", "", []byte("accepted")))
	require.NoError(t, err)
	require.True(t, good.Queued)

	var buf bytes.Buffer
	res, err := env.c.Export(ctx, &buf)
	require.NoError(t, err)
	require.Equal(t, 2, res.Outbox)
	require.GreaterOrEqual(t, res.Answers, 1)
	require.Contains(t, buf.String(), "ehgate-cache-export")

	env.p.SetWriteValidator(func(w platformtest.Write) error {
		if w.Key == "dead1" {
			return errors.New("unknown product code")
		}
		return nil
	})
	defer env.p.SetWriteValidator(nil)
	require.NoError(t, env.c.EndFallback(ServiceEHealthBox))
	env.advanceUntil(t, time.Second, func() bool { return env.c.Status().Outbox.Pending == 0 })
	dead, err := env.c.DeadLetters(ctx)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "dead1", dead[0].IdempotencyKey)
	require.Contains(t, dead[0].Reason, "unknown product code")
	require.Equal(t, 1, env.c.Status().Outbox.DeadLetters)

	delivered := 0
	for _, w := range env.p.Writes() {
		if w.Key == good.Key {
			delivered++
		}
	}
	require.Equal(t, 1, delivered)

	n, err := env.c.Rekey(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "one key: nothing to rewrite")
	_, err = env.c.Purge(ctx)
	require.NoError(t, err)
}
