package bcp

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// TestLoader_AgainstThePlatform reads the list the test platform signs and serves (both
// namespaces), over its HTTPS control server, verified against its pinned CA, and follows
// a switch of insurability to the BCP site.
func TestLoader_AgainstThePlatform(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			p, err := platformtest.Start(platformtest.Config{ListVersion: version, Patients: 10})
			require.NoError(t, err)
			defer p.Close()

			clock := newStepClock(time.Now())
			store := NewFileListStore(filepath.Join(t.TempDir(), "servicelist.xml"))
			verify := func(raw []byte) error {
				return soapListVerifier(p.ServiceListRoots(), time.Now())(raw)
			}
			l, err := NewLoader(LoaderConfig{BaseURL: p.ServiceListBaseURL(), Verify: verify, Store: store},
				WithHTTPClient(p.HTTPClient()), WithClock(clock))
			require.NoError(t, err)
			defer l.Close()
			clock.WaitScheduled(t, 1)
			require.NoError(t, l.Status().LastErr)
			cur := l.Current()
			require.NotNil(t, cur)
			require.Equal(t, version, cur.Version)
			require.Equal(t, p.ServiceListSHA256(), cur.SHA256)

			ins, ok := cur.Lookup("insurability:v2")
			require.True(t, ok)
			require.Len(t, ins.Endpoints, 2)
			require.Equal(t, StatusActive, ins.Endpoints[0].Status)
			if version == 2 {
				require.NotNil(t, ins.Cache)
				require.Equal(t, 30*24*time.Hour, ins.Cache.TTL)
			} else {
				require.Nil(t, ins.Cache)
			}
			_, ok = cur.Lookup("iamsaml11tokenservice:v1")
			require.True(t, ok)

			// The platform moves insurability to its BCP site and re-signs the list.
			require.NoError(t, p.MoveService("insurability:v2", "mycarenet"))
			changed, err := l.Refresh(context.Background())
			require.NoError(t, err)
			require.True(t, changed)
			ins, _ = l.Current().Lookup("insurability:v2")
			require.Equal(t, StatusInactive, ins.Endpoints[0].Status)
			require.Equal(t, StatusActive, ins.Endpoints[1].Status)
			saved, err := store.Load()
			require.NoError(t, err)
			require.Equal(t, p.ServiceList(), saved)

			// A list altered in transit (here: on disk) fails the platform's signature.
			altered := bytes.Replace(saved, []byte(`Environment="Acceptation"`), []byte(`Environment="Production"`), 1)
			require.NotEqual(t, saved, altered)
			require.ErrorIs(t, verify(altered), soap.ErrDigest)
		})
	}
}

// TestPoller_AgainstThePlatform reads the platform's status feed (object and bare array).
func TestPoller_AgainstThePlatform(t *testing.T) {
	p, err := platformtest.Start(platformtest.Config{Patients: 10})
	require.NoError(t, err)
	defer p.Close()
	clock := newStepClock(time.Now())
	poller, err := NewPoller(PollerConfig{URL: p.StatusFeedURL(), Services: map[string][]string{
		"insurability": {"insurability:v2"},
		"mycarenet":    {"mycarenettarification:v1"}, // the group
	}}, WithHTTPClient(p.HTTPClient()), WithClock(clock))
	require.NoError(t, err)
	defer poller.Close()
	clock.WaitScheduled(t, 1)
	require.NoError(t, poller.Status().LastErr)
	h, ok := poller.Current().Service("insurability:v2")
	require.True(t, ok)
	require.Equal(t, ComponentOperational, h.Status)

	p.SetComponentStatus("Insurability", platformtest.StatusMajorOutage)
	p.SetStatusFeedBareArray(true)
	changed, err := poller.Refresh(context.Background())
	require.NoError(t, err)
	require.True(t, changed)
	require.True(t, poller.Current().MajorOutage("insurability:v2"))
	require.True(t, poller.Current().MajorOutage("mycarenettarification:v1"), "worst of the MyCareNet group")
}
