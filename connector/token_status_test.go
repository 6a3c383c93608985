package connector

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Status shows the token the provider obtained in the background, before any signed call.
func TestClient_StatusShowsTheTokenBeforeTheFirstSignedCall(t *testing.T) {
	env := newTestEnv(t)
	require.Eventually(t, func() bool { return env.c.Status().Token.Valid }, 15*time.Second, 2*time.Millisecond,
		"the provider's first token appears in Status without a business call")
	st := env.c.Status().Token
	require.True(t, st.NotOnOrAfter.After(env.clock.Now()))
	require.GreaterOrEqual(t, st.Requests, int64(1))
	require.Nil(t, env.c.token.Load(), "no signed call was made")
}
