package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// inProcess describes p (running in this process) as a Platform: for the harness's own
// test, which proves the plumbing, not the figures.
func inProcess(t *testing.T, p *platformtest.Platform) Platform {
	t.Helper()
	id, err := p.NewIdentity(platformtest.Pharmacy, "Bench Pharmacy")
	require.NoError(t, err)
	p12, err := id.PKCS12("bench")
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "pharmacy.p12")
	require.NoError(t, os.WriteFile(file, p12, 0o600))
	plat := Platform{
		ServiceListURL: p.ServiceListBaseURL(), StatusFeedURL: p.StatusFeedURL(),
		ListRoots: p.ServiceListRoots(), TLSRoots: p.CACertPool(), STSRoots: p.STSRoots(),
		P12File: file, Password: "bench", NIHII: id.NIHII,
	}
	for _, pt := range p.Patients() {
		if pt.Known && pt.CoveredOn(time.Now()) {
			plat.Patients = append(plat.Patients, pt.SSIN)
		}
	}
	return plat
}

func insurabilityOK(p *platformtest.Platform) int {
	n := 0
	for _, s := range platformtest.DefaultSites {
		n += p.Count(s.Name, platformtest.ServiceInsurability, platformtest.OutcomeOK)
	}
	return n
}

// The floor posts exactly the bytes ehgate sent (URL, SOAPAction, Content-Type and body, as
// they reach the floor's transport), the platform accepts them as a valid signed request, and
// a small measurement counts every call on its side.
func TestLiveRig_FloorPostsExactlyWhatEhgateSent(t *testing.T) {
	p, err := platformtest.Start(platformtest.Config{Patients: 30, Seed: 1})
	require.NoError(t, err)
	defer p.Close()
	rig, err := NewRig(inProcess(t, p), t.TempDir())
	require.NoError(t, err)
	defer func() { require.NoError(t, rig.Close()) }()
	require.Equal(t, 2048, rig.KeyBits())
	ctx := context.Background()

	require.NoError(t, rig.Live(ctx))
	sent, err := rig.Capture(ctx)
	require.NoError(t, err)
	require.Contains(t, string(sent.Body), "GetInsurabilityForPharmacistRequest")
	require.Contains(t, string(sent.Body), "SignatureValue")

	before := insurabilityOK(p)
	rig.floor.armed.Store(true)
	n, err := rig.Floor(ctx, sent)
	require.NoError(t, err, "the platform accepts the replayed request")
	require.Positive(t, n)
	posted := rig.floor.take()
	require.NotNil(t, posted)
	require.Equal(t, sent.URL, posted.URL)
	require.Equal(t, sent.SOAPAction, posted.SOAPAction)
	require.Equal(t, sent.ContentType, posted.ContentType)
	require.True(t, bytes.Equal(sent.Body, posted.Body), "the floor posts the exact bytes")
	require.Equal(t, before+1, insurabilityOK(p), "answered as a valid insurability request")

	// Tampered bytes are refused: the platform does check what the floor sends.
	bad := *sent
	bad.Body = bytes.Replace(bytes.Clone(sent.Body), []byte("GetInsurabilityForPharmacistRequest"), []byte("GetInsurabilityForPharmacistRequesT"), 2)
	_, err = rig.Floor(ctx, &bad)
	require.Error(t, err)

	var res Result
	require.NoError(t, rig.Measure(ctx, 2, 2, &res))
	require.Equal(t, 4, res.Live.Calls)
	require.Equal(t, 4, res.Floor.Calls)
	require.Positive(t, res.Live.Mallocs)
	require.Positive(t, res.Floor.Mallocs)
	require.Equal(t, len(sent.Body) > 0, res.RequestBytes > 0)
	require.LessOrEqual(t, len(res.PairRatios), 2, "at most one ratio per pair of batches")
	for _, r := range res.PairRatios {
		require.Positive(t, r)
	}
}

var (
	liveBatch = flag.Int("live.batch", 20, "BenchmarkLiveCall: calls per batch")
	liveSim   struct {
		once sync.Once
		sim  *Platformsim
		rig  *Rig
		dir  string
		err  error
	}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if liveSim.rig != nil {
		liveSim.rig.Close()
	}
	if liveSim.sim != nil {
		liveSim.sim.Stop()
	}
	if liveSim.dir != "" {
		os.RemoveAll(liveSim.dir)
	}
	os.Exit(code)
}

// liveRig starts platformsim in its own process and a warm Rig on it, once per test binary.
func liveRig(b *testing.B) *Rig {
	liveSim.once.Do(func() {
		ctx := context.Background()
		if liveSim.dir, liveSim.err = os.MkdirTemp("", "ehgate-bench-live-"); liveSim.err != nil {
			return
		}
		if liveSim.sim, liveSim.err = StartPlatformsim(ctx, liveSim.dir); liveSim.err != nil {
			return
		}
		if liveSim.rig, liveSim.err = NewRig(liveSim.sim.Platform, filepath.Join(liveSim.dir, "store")); liveSim.err != nil {
			return
		}
		// Warm: the service list, the token, both connections, the store's files.
		var warm Result
		liveSim.err = liveSim.rig.Measure(ctx, 2, 20, &warm)
	})
	if liveSim.err != nil {
		b.Fatal(liveSim.err)
	}
	return liveSim.rig
}

// BenchmarkLiveCall is issue 19's measurement: ehgate's live Client.Insurability against
// the floor (one RSA-2048 signature and an HTTPS POST of the bytes ehgate sent), with the
// platform stand-in (examples/platformsim) in its own process. Each b.N is one pair of
// batches (-live.batch calls each), alternating; the client's CPU is read with getrusage.
// Run: go test -run '^$' -bench LiveCall -benchtime 30x
func BenchmarkLiveCall(b *testing.B) {
	rig := liveRig(b)
	ctx := context.Background()
	var res Result
	for b.Loop() {
		if err := rig.Measure(ctx, 1, *liveBatch, &res); err != nil {
			b.Fatal(err)
		}
	}
	if !res.CPUMeasured {
		b.Skip("client CPU is read with getrusage on linux and darwin only")
	}
	b.ReportMetric(us(res.Live.CPUPerCall()), "live-cpu-µs/call")
	b.ReportMetric(us(res.Floor.CPUPerCall()), "floor-cpu-µs/call")
	b.ReportMetric(res.Ratio(), "live/floor")
	b.ReportMetric(res.MedianRatio(), "live/floor-median")
	b.ReportMetric(res.Live.AllocsPerCall(), "live-allocs/call")
	b.ReportMetric(res.Floor.AllocsPerCall(), "floor-allocs/call")
	b.ReportMetric(res.Live.BytesPerCall(), "live-B/call")
	b.ReportMetric(res.Floor.BytesPerCall(), "floor-B/call")
	b.ReportMetric(float64(res.RequestBytes), "request-B")
	fmt.Fprintf(os.Stderr, "BenchmarkLiveCall N=%d batch=%d: %s\n", b.N, *liveBatch, res)
}
