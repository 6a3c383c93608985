package bcp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The review's attacks on service list adoption (MEDIUM 2) that the Loader
// itself refuses; the signer's pin is the connector's verifier
// (connector.TestServiceListVerifier_PinsTheSigner).
func TestLoader_RefusesOtherEnvironmentFutureAndConflictingLists(t *testing.T) {
	trusted, _ := testListPKIs(t)
	withEnv := func(env string, issue time.Time) []byte {
		return signList(t, trusted, strings.Replace(unsignedList(issue, true), `Environment="Test"`, `Environment="`+env+`"`, 1))
	}
	held := withEnv("Production", testListTime)
	sameInstantOtherContent := signList(t, trusted, strings.Replace(
		strings.Replace(unsignedList(testListTime, false), `Environment="Test"`, `Environment="Production"`, 1),
		"https://fallback.example:9443", "https://attacker.example:9443", 1))

	tests := []struct {
		name   string
		xml    []byte
		reason string
		is     error
	}{
		{"acceptance list in production", withEnv("Acceptation", testListTime.Add(time.Hour)), "environment", ErrListEnvironment},
		{"issued a day ahead of the clock", withEnv("Production", testLoaderNow.Add(24*time.Hour)), "future", ErrListFuture},
		{"issued just past the skew", withEnv("Production", testLoaderNow.Add(DefaultListClockSkew+time.Second)), "future", ErrListFuture},
		{"same IssueInstant, other endpoints", sameInstantOtherContent, "conflict", ErrListConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newLoaderRig(t, held, func(c *LoaderConfig) { c.Environment = "Production" })
			r.clock.WaitScheduled(t, 1)
			heldList := r.loader.Current()
			require.NotNil(t, heldList)

			r.srv.set(tc.xml, "")
			changed, err := r.loader.Refresh(context.Background())
			require.False(t, changed)
			var rej *RejectedError
			require.ErrorAs(t, err, &rej)
			require.Equal(t, tc.reason, rej.Reason)
			require.ErrorIs(t, err, tc.is)
			require.Same(t, heldList, r.loader.Current())
			stored, lerr := r.store.Load()
			require.NoError(t, lerr)
			require.Equal(t, held, stored, "a refused list is not persisted")

			// A genuine later list is still adopted: nothing was blocked.
			good := withEnv("Production", testListTime.Add(2*time.Hour))
			r.srv.set(good, "")
			changed, err = r.loader.Refresh(context.Background())
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, good, r.loader.Current().Raw)
		})
	}

	t.Run("within the skew is adopted", func(t *testing.T) {
		r := newLoaderRig(t, withEnv("Production", testLoaderNow.Add(DefaultListClockSkew)), func(c *LoaderConfig) { c.Environment = "Production" })
		r.clock.WaitScheduled(t, 1)
		require.NotNil(t, r.loader.Current())
	})
	t.Run("stored list of another environment is ignored", func(t *testing.T) {
		r := newLoaderRig(t, held, nil) // stores the acceptance list below
		r.srv.set(withEnv("Acceptation", testListTime.Add(time.Hour)), "")
		r.clock.WaitScheduled(t, 1)
		_, err := r.loader.Refresh(context.Background())
		require.NoError(t, err)
		l, err := NewLoader(LoaderConfig{BaseURL: "https://127.0.0.1:1/servicelist", Verify: soapListVerifier(trusted.roots, testListTime),
			Store: r.store, Environment: "Production"}, WithClock(newStepClock(testLoaderNow)))
		require.NoError(t, err)
		defer l.Close()
		require.Nil(t, l.Current())
	})
	t.Run("builtin list of another environment fails NewLoader", func(t *testing.T) {
		_, err := NewLoader(LoaderConfig{BaseURL: "https://127.0.0.1:1/servicelist", Verify: soapListVerifier(trusted.roots, testListTime),
			Builtin: withEnv("Acceptation", testListTime), Environment: "Production"}, WithClock(newStepClock(testLoaderNow)))
		require.ErrorIs(t, err, ErrListEnvironment)
	})
}

func TestParseServiceList_CommentFloodRefused(t *testing.T) {
	trusted, _ := testListPKIs(t)
	raw := signList(t, trusted, unsignedList(testListTime, true))
	flood := strings.Replace(string(raw), "https://fallback", "https://"+strings.Repeat("<!---->", maxListComments+1)+"fallback", 1)
	_, err := ParseServiceList([]byte(flood))
	require.ErrorIs(t, err, ErrListTooLarge)
}
