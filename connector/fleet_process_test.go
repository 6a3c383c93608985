package connector

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/sts"
)

// fleetLease is the outbox lease of the fleet test's instances: a killed instance's
// partitions pass to another after it.
const fleetLease = 4 * time.Second

// TestHelperFleetInstance is one instance (process) of TestFleet_ThreeProcesses: a client on
// the shared database that submits EHGATE_FLEET_WRITES writes, printing "ack <key>" once
// each Submit has returned, then "enqueued", and then keeps running (replaying the outbox
// with the others, printing "delivered" when a replay of its own delivered) until killed.
func TestHelperFleetInstance(t *testing.T) {
	dir := os.Getenv("EHGATE_FLEET_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	env := func(k string) string { return os.Getenv("EHGATE_FLEET_" + k) }
	key, _ := hex.DecodeString(env("KEY"))
	cred, err := sts.LoadPKCS12(filepath.Join(dir, "id.p12"), "pw", sts.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(name string) *x509.CertPool {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(b)
		return p
	}
	list, err := os.ReadFile(filepath.Join(dir, "servicelist.xml"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgstore.Open(context.Background(), pgstore.Config{URL: os.Getenv("EHGATE_TEST_POSTGRES_URL")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		// The list's signing CA is not exported by platformtest: the list compiled in (the
		// platform's own) routes, the downloaded one fails verification.
		ServiceListURL: env("LIST"), ServiceListRoots: emptyPool(), ServiceListBuiltin: list,
		TLSRoots: pool("tls.pem"), STSRoots: pool("sts.pem"),
		Credentials:  Credentials{Identification: cred},
		Identity:     Identity{NIHII: env("NIHII"), SSIN: env("SSIN")},
		Package:      PackageLicense{Name: "ehgate-test", Username: "vendor", Password: "licence"},
		StoreBackend: db, StoreTenant: env("TENANT"), StoreLease: fleetLease,
		CacheKeys: [][]byte{key},
		Timeouts:  Timeouts{Connect: time.Second, Attempt: time.Second},
		BCP: bcp.Config{
			Breaker: bcp.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: time.Second, Jitter: -1},
			Router:  bcp.RouterConfig{HoldDown: -1},
		},
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	say := func(s string) {
		out.Lock()
		defer out.Unlock()
		_, _ = os.Stdout.WriteString(s + "\n")
	}
	events, _ := c.Subscribe(4096)
	go func() {
		for ev := range events {
			if ev.Kind == EventReplay && ev.Replay != nil && ev.Replay.Delivered > 0 {
				say("delivered")
			}
		}
	}()
	name := env("NAME")
	n, _ := strconv.Atoi(env("WRITES"))
	for i := range n {
		// The PublicationId (13 letters or digits at most): the run, the instance, the index.
		m := testMessage(fmt.Sprintf("%s%s%03d", env("RUN"), name, i), fmt.Sprintf("P%d", i%4), []byte(strconv.Itoa(i)))
		r, err := c.SendMessage(context.Background(), m)
		if err != nil || !(r.Queued || r.Delivered) {
			t.Fatalf("write %d neither queued nor delivered: %v", i, err)
		}
		say("ack " + r.Key)
	}
	say("enqueued")
	select {} // replay with the others until killed
}

type fleetChild struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	acks  []string
	lines chan string
}

func (f *fleetChild) acked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acks...)
}

// waitFor waits for a line of the child (acks are recorded on the way).
func (f *fleetChild) waitFor(t *testing.T, line string, within time.Duration) bool {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				return false
			}
			if l == line {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func (f *fleetChild) kill(t *testing.T) {
	require.NoError(t, f.cmd.Process.Kill()) // SIGKILL
	_ = f.cmd.Wait()
}

// Three client processes on one database with the platform stand-in. While the write
// service refuses, all three queue writes (of the same four partitions) and one is
// SIGKILLed while enqueuing; then the service comes back, the instances replay together, and
// the first one seen delivering is SIGKILLed in the middle of its replay. The survivor takes
// its partitions over after the lease: the platform then holds every acknowledged write
// exactly once, and each instance's writes of a partition in the order they were
// acknowledged.
func TestFleet_ThreeProcessesKilledMidEnqueueAndMidReplay(t *testing.T) {
	if os.Getenv("EHGATE_TEST_POSTGRES_URL") == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
	}
	p, id := testPlatform(t)
	dir := t.TempDir()
	p12, err := id.PKCS12("pw")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "id.p12"), p12, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.pem"), p.CACertPEM(), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sts.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.STSCertificate().Raw}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "servicelist.xml"), p.ServiceList(), 0o600))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	tenant := cachetest.Tenant("fleet")
	run := tenant[len("fleet-"):][:6] // the platform is shared by the package's tests: keys of this run
	mine := func() []platformtest.Write {
		var out []platformtest.Write
		for _, w := range p.Writes() {
			if strings.HasPrefix(w.Key, run) {
				out = append(out, w)
			}
		}
		return out
	}

	for _, s := range p.Sites() {
		s.Inject(platformtest.ServiceEHealthBox, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	t.Cleanup(func() {
		for _, s := range p.Sites() {
			s.Clear("")
		}
	})

	start := func(name string, writes int) *fleetChild {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFleetInstance$", "-test.v=false", "-test.count=1")
		cmd.Env = append(os.Environ(), "EHGATE_FLEET_DIR="+dir, "EHGATE_FLEET_NAME="+name, "EHGATE_FLEET_WRITES="+strconv.Itoa(writes),
			"EHGATE_FLEET_KEY="+hex.EncodeToString(key), "EHGATE_FLEET_TENANT="+tenant, "EHGATE_FLEET_RUN="+run,
			"EHGATE_FLEET_NIHII="+id.NIHII, "EHGATE_FLEET_SSIN="+id.SSIN,
			"EHGATE_FLEET_LIST="+p.ServiceListBaseURL())
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		f := &fleetChild{name: name, cmd: cmd, lines: make(chan string, 10000)}
		go func() {
			defer close(f.lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if k, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					f.mu.Lock()
					f.acks = append(f.acks, k)
					f.mu.Unlock()
				}
				f.lines <- sc.Text()
			}
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return f
	}
	a, b, c := start("A", 40), start("B", 400), start("C", 40)

	// B dies while enqueuing.
	require.Eventually(t, func() bool { return len(b.acked()) >= 15 }, 60*time.Second, 5*time.Millisecond)
	b.kill(t)
	require.True(t, a.waitFor(t, "enqueued", 60*time.Second), "A queued its writes")
	require.True(t, c.waitFor(t, "enqueued", 60*time.Second), "C queued its writes")
	require.Empty(t, mine(), "nothing reached the platform while the service refused")

	// The service comes back; the first instance seen delivering dies mid-replay.
	for _, s := range p.Sites() {
		s.Clear("")
	}
	first := make(chan *fleetChild, 2)
	for _, f := range []*fleetChild{a, c} {
		go func() {
			if f.waitFor(t, "delivered", 60*time.Second) {
				first <- f
			}
		}()
	}
	var victim *fleetChild
	select {
	case victim = <-first:
	case <-time.After(60 * time.Second):
		t.Fatal("no instance delivered")
	}
	victim.kill(t)
	t.Logf("killed %s while enqueuing after %d acknowledged writes, %s mid-replay with %d writes at the platform",
		b.name, len(b.acked()), victim.name, len(mine()))

	var acked []string
	for _, f := range []*fleetChild{a, b, c} {
		acked = append(acked, f.acked()...)
	}
	require.Len(t, acked, 40+len(b.acked())+40)
	seen := map[string]int{}
	require.Eventually(t, func() bool {
		clear(seen)
		for _, w := range mine() {
			seen[w.Key]++
		}
		for _, k := range acked {
			if seen[k] == 0 {
				return false
			}
		}
		return true
	}, 90*time.Second, 50*time.Millisecond, "the survivor delivers the dead instances' writes after their lease")

	order := map[string][]int{} // producer and partition → acknowledged index, in accepted order
	for _, w := range mine() {
		require.Equal(t, 1, seen[w.Key], "write %s accepted exactly once", w.Key)
		rest := strings.TrimPrefix(w.Key, run)
		name, idx := rest[:1], rest[1:]
		i, err := strconv.Atoi(idx)
		require.NoError(t, err)
		pk := fmt.Sprintf("%s/P%d", name, i%4)
		order[pk] = append(order[pk], i)
	}
	for _, k := range acked {
		require.Equal(t, 1, seen[k], "acknowledged write %s delivered exactly once", k)
	}
	for pk, is := range order {
		for j := 1; j < len(is); j++ {
			require.Less(t, is[j-1], is[j], "%s delivered out of order: %v", pk, is)
		}
	}
}
