package platformtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// listVerifier verifies a raw list's enveloped signature against the
// platform's pinned list CA, as a client does.
func listVerifier(p *platformtest.Platform) func([]byte) error {
	return func(raw []byte) error {
		doc, err := soap.ParseDocument(bytesReader(raw), soap.Limits{})
		if err != nil {
			return err
		}
		_, err = soap.VerifyEnveloped(doc.Root(), p.ServiceListRoots(), soap.VerifyEnvelopedOptions{IDAttr: "Id"})
		return err
	}
}

// The outage scenario moves insurability the way the platform does: it
// publishes a newer signed list with the MyCareNet BCP endpoint ACTIVE and
// the eHealth one INACTIVE, and later the list as it was. A bcp.Loader
// (the client's list follower) adopts each list at its next poll: one
// Refresh after the step, no more.
func TestOutageScenario_ListFlipIsSignedAndFollowedWithinOnePoll(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(map[int]string{1: "v1", 2: "v2"}[version], func(t *testing.T) {
			p := start(t, platformtest.Config{ListVersion: version, Patients: 10})
			l, err := bcp.NewLoader(bcp.LoaderConfig{BaseURL: p.ServiceListBaseURL(), Verify: listVerifier(p), Interval: time.Hour},
				bcp.WithHTTPClient(p.HTTPClient()))
			require.NoError(t, err)
			defer l.Close()
			_, err = l.Refresh(context.Background())
			require.NoError(t, err)
			statuses := func() []bcp.EndpointStatus {
				ins, ok := l.Current().Lookup(platformtest.ServiceInsurability)
				require.True(t, ok)
				require.Len(t, ins.Endpoints, 2)
				require.Equal(t, p.URL(platformtest.ServiceInsurability, "ehealth"), ins.Endpoints[0].URL)
				require.Equal(t, p.URL(platformtest.ServiceInsurability, "mycarenet"), ins.Endpoints[1].URL)
				return []bcp.EndpointStatus{ins.Endpoints[0].Status, ins.Endpoints[1].Status}
			}
			require.Equal(t, []bcp.EndpointStatus{bcp.StatusActive, bcp.StatusInactive}, statuses(), "production shape")

			sc := platformtest.OutageScenario(time.Second)
			want := [][]bcp.EndpointStatus{
				{bcp.StatusActive, bcp.StatusInactive}, // failing at the primary: list unchanged
				{bcp.StatusInactive, bcp.StatusActive}, // moved to the BCP site
				{bcp.StatusInactive, bcp.StatusActive}, // down everywhere: list unchanged
				{bcp.StatusActive, bcp.StatusInactive}, // restored
			}
			require.Len(t, sc.Steps, len(want))
			for i, st := range sc.Steps {
				st.Do(p)
				// One poll. (Its "changed" result is not asserted: the Loader's
				// own first check runs concurrently and may adopt a list first.)
				_, err := l.Refresh(context.Background())
				require.NoError(t, err, st.Name)
				require.Equal(t, p.ServiceListSHA256(), l.Current().SHA256, "%s: %+v", st.Name, l.Status())
				require.Equal(t, want[i], statuses(), st.Name)
			}
		})
	}
}

// With Config.ActiveBCP the services that have a BCP endpoint list two
// ACTIVE endpoints from the start (for a client's own failover), and the
// scenario's restore step gives that shape back.
func TestConfig_ActiveBCPListsTwoActiveEndpoints(t *testing.T) {
	p := start(t, platformtest.Config{ActiveBCP: true, Patients: 10})
	_, root := fetchList(t, p)
	for _, svc := range []string{platformtest.ServiceInsurability, platformtest.ServiceGenericInsurability} {
		require.Equal(t, map[string]string{p.URL(svc, "ehealth"): "0 ACTIVE", p.URL(svc, "mycarenet"): "1 ACTIVE"}, endpoints(root, svc))
	}
	require.NoError(t, p.MoveService(platformtest.ServiceInsurability, "mycarenet"))
	require.False(t, p.EndpointActive(platformtest.ServiceInsurability, "ehealth"))
	require.NoError(t, p.RestoreService(platformtest.ServiceInsurability))
	require.True(t, p.EndpointActive(platformtest.ServiceInsurability, "ehealth"))
	require.True(t, p.EndpointActive(platformtest.ServiceInsurability, "mycarenet"))
}
