package bcp

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoader_FeedsTheEngine wires a Loader to an Engine as the connector does and shows
// that a signed list switching insurability to its fallback moves the traffic, while a
// forged one does not.
func TestLoader_FeedsTheEngine(t *testing.T) {
	trusted, rogue := testListPKIs(t)
	srv := newListServer(t, signList(t, trusted, unsignedList(testListTime, true)))
	clock := newStepClock(testLoaderNow)
	loader, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: soapListVerifier(trusted.roots, testListTime)},
		WithHTTPClient(srv.srv.Client()), WithClock(clock))
	require.NoError(t, err)
	defer loader.Close()
	clock.WaitScheduled(t, 1)

	engine, err := New(Config{})
	require.NoError(t, err)
	defer engine.Close()
	unsubscribe := loader.OnChange(engine.SetServiceList)
	defer unsubscribe()

	target := func() string {
		var url string
		require.NoError(t, engine.Do(context.Background(), "insurability:v2", func(_ context.Context, ep Endpoint) error {
			url = ep.URL
			return nil
		}))
		return url
	}
	require.Equal(t, "https://services.example/Insurability/v2", target())

	// A forged list that would divert traffic is refused; the engine keeps the primary.
	srv.set(signList(t, rogue, unsignedList(testListTime.Add(time.Hour), false)), "")
	_, err = loader.Refresh(context.Background())
	require.ErrorIs(t, err, ErrListSignature)
	require.Equal(t, "https://services.example/Insurability/v2", target())

	// The platform switches insurability to its BCP endpoint.
	srv.set(signList(t, trusted, unsignedList(testListTime.Add(2*time.Hour), false)), "")
	changed, err := loader.Refresh(context.Background())
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, "https://fallback.example:9443/ehealth/bcp/insurability", target())
}
