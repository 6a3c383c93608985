package connector

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/sts"
)

// TestHelperQueueWrites is the child of TestClient_QueuedWritesSurviveKill9: with the
// platform unreachable it queues writes, printing each key once Submit has returned, until
// it is killed.
func TestHelperQueueWrites(t *testing.T) {
	dir := os.Getenv("EHGATE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	key, _ := hex.DecodeString(os.Getenv("EHGATE_HELPER_KEY"))
	cred, err := sts.LoadPKCS12(filepath.Join(dir, "id.p12"), "pw", sts.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		ServiceListURL:   "https://127.0.0.1:1/servicelist", // nothing listens: the platform is down
		ServiceListRoots: emptyPool(), STSRoots: emptyPool(),
		Credentials: Credentials{Identification: cred},
		Identity:    Identity{NIHII: os.Getenv("EHGATE_HELPER_NIHII"), SSIN: os.Getenv("EHGATE_HELPER_SSIN")},
		CacheDir:    filepath.Join(dir, "store"), CacheKeys: [][]byte{key},
		Timeouts: Timeouts{Connect: 200 * time.Millisecond, Attempt: 500 * time.Millisecond},
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		r, err := c.SendMessage(context.Background(), testMessage("", "p"+string(rune('a'+i%3)), []byte{byte(i)}))
		if err != nil || !r.Queued {
			t.Fatalf("write %d not queued: %v", i, err)
		}
		os.Stdout.WriteString("queued " + r.Key + "\n")
	}
}

func TestClient_QueuedWritesSurviveKill9AndAreReplayedOnce(t *testing.T) {
	p, id := testPlatform(t)
	dir := t.TempDir()
	p12, err := id.PKCS12("pw")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "id.p12"), p12, 0o600))
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperQueueWrites$", "-test.v=false")
	cmd.Env = append(os.Environ(), "EHGATE_HELPER_DIR="+dir, "EHGATE_HELPER_KEY="+hex.EncodeToString(key),
		"EHGATE_HELPER_NIHII="+id.NIHII, "EHGATE_HELPER_SSIN="+id.SSIN)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 25 {
		if k, ok := strings.CutPrefix(sc.Text(), "queued "); ok {
			acked = append(acked, k)
		}
	}
	require.NoError(t, cmd.Process.Kill()) // SIGKILL, mid-stream
	_ = cmd.Wait()
	require.Len(t, acked, 25, "the child queued writes before it was killed")

	cfg := testConfig(t, p, id)
	cfg.CacheDir = filepath.Join(dir, "store")
	cfg.CacheKeys = [][]byte{key}
	clock := newTestClock()
	c, err := New(cfg, WithClock(clock))
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return c.Status().Outbox.Pending == 0 }, 20*time.Second, 5*time.Millisecond)

	seen := map[string]int{}
	for _, w := range p.Writes() {
		seen[w.Key]++
	}
	for _, k := range acked {
		require.Equal(t, 1, seen[k], "every write acknowledged as queued is delivered exactly once")
	}
}

func TestClient_StoreHoldsNoPersonalDataInClear(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pts := patients(env.p, 5)
	for _, pt := range pts {
		_, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
		_, err = env.c.GenericInsurability(ctx, GenericInsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	for _, s := range env.p.Sites() {
		s.Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	_, err := env.c.SendMessage(ctx, testMessage("", pts[0].SSIN, []byte("claim for "+pts[0].LastName)))
	require.NoError(t, err)
	dir := env.c.cfg.CacheDir
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, pt := range pts {
			require.NotContains(t, string(b), pt.SSIN, path)
			require.NotContains(t, string(b), pt.PaymentApproval, path)
			require.NotContains(t, string(b), "claim for", path)
		}
		return nil
	})
	require.NoError(t, err)
}

func TestClient_ServiceListMovesTrafficToTheFallbackEndpoint(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	pt := patients(env.p, 1)[0]
	env.p.SetEndpointStatus(ServiceInsurability, "ehealth", false)
	defer env.p.SetEndpointStatus(ServiceInsurability, "ehealth", true)
	env.advanceUntil(t, time.Second, env.inMode(ServiceInsurability, ModeFailedOver)) // the list is polled
	_, cause := env.c.Mode(ServiceInsurability)
	require.Equal(t, CauseServiceList, cause)
	res, err := env.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Contains(t, res.Endpoint, env.p.URL(ServiceInsurability, "mycarenet"))
}

func TestClient_RejectedWriteIsABusinessErrorAndNotQueued(t *testing.T) {
	env := newTestEnv(t)
	env.p.SetWriteValidator(func(w platformtest.Write) error {
		if w.Key == "refuseme" {
			return os.ErrInvalid
		}
		return nil
	})
	defer env.p.SetWriteValidator(nil)
	r, err := env.c.SendMessage(context.Background(), testMessage("refuseme", "", []byte("x")))
	require.ErrorIs(t, err, ErrBusiness)
	require.False(t, r.Queued)
	require.False(t, r.Delivered)
	require.Zero(t, env.c.Status().Outbox.Pending)
}

func emptyPool() *x509.CertPool { return x509.NewCertPool() }

// With the production shape of the service list (the eHealth endpoint ACTIVE, MyCareNet's BCP
// endpoint INACTIVE), the client never calls the BCP endpoint until the platform publishes a
// newer signed list that moves the service there; it follows that list within one poll and the
// next call goes live to MyCareNet with no caller error, even with the eHealth site down.
func TestClient_FollowsTheListFlipOfTheProductionShape(t *testing.T) {
	p, err := platformtest.Start(platformtest.Config{Patients: 10, Seed: 11})
	require.NoError(t, err)
	defer p.Close()
	require.True(t, p.EndpointActive(ServiceInsurability, "ehealth"))
	require.False(t, p.EndpointActive(ServiceInsurability, "mycarenet"), "the production shape")
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Flip")
	require.NoError(t, err)
	cfg := testConfig(t, p, id)
	clock := newTestClock()
	c, err := New(cfg, WithClock(clock))
	require.NoError(t, err)
	defer c.Close()
	env := &testEnv{p: p, c: c, clock: clock}
	ctx := context.Background()
	pt := patients(p, 1)[0]
	res, err := c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Contains(t, res.Endpoint, p.URL(ServiceInsurability, "ehealth"))

	require.Zero(t, p.Count("mycarenet", ServiceInsurability, platformtest.OutcomeOK), "an INACTIVE endpoint is not called")

	require.NoError(t, p.MoveService(ServiceInsurability, "mycarenet"))
	env.advanceUntil(t, cfg.ServiceListPoll, env.inMode(ServiceInsurability, ModeFailedOver))
	_, cause := c.Mode(ServiceInsurability)
	require.Equal(t, CauseServiceList, cause)
	p.Site("ehealth").Inject(ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	res, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err, "no caller error")
	require.Equal(t, SourceLive, res.Source)
	require.False(t, res.Degraded)
	require.Contains(t, res.Endpoint, p.URL(ServiceInsurability, "mycarenet"))
}
