package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

// The crash test runs the test binary itself as a child process
// (TestHelperProcess), kills it with SIGKILL, and checks the store.
const (
	helperEnv    = "EHGATE_CACHE_HELPER"
	helperDirEnv = "EHGATE_CACHE_HELPER_DIR"
	helperRunEnv = "EHGATE_CACHE_HELPER_RUN"
	helperURLEnv = "EHGATE_CACHE_HELPER_URL"
	producers    = 4
)

var crashSeed = flag.Uint64("crash-seed", 1, "seed of the kill moments of TestCrash_KillNineWhileWritingThenReplayExactlyOnce (0 = from the clock)")

func crashConfig(dir string) cache.Config {
	cfg := testConfig(dir)
	cfg.Outbox = cache.OutboxConfig{Concurrency: producers, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	return cfg
}

// crashValue and crashPayload derive the stored bytes from the key, so the
// parent can check them without being told.
func crashValue(key string) []byte {
	sum := sha256.Sum256([]byte("value/" + key))
	return []byte(key + "=" + strings.Repeat(hex.EncodeToString(sum[:]), 5))
}

func crashPayload(key string) []byte {
	sum := sha256.Sum256([]byte("payload/" + key))
	return []byte(key + ":" + strings.Repeat(hex.EncodeToString(sum[:]), 4))
}

// TestHelperProcess is not a test: it is the child process of the crash test.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("child process of TestCrash_*; runs only when re-executed")
	}
	st, err := cache.Open(crashConfig(os.Getenv(helperDirEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	ack := func(kind, key string) {
		mu.Lock()
		_, _ = os.Stdout.WriteString(kind + " " + key + "\n") // one write(2): in the pipe before the call returns
		mu.Unlock()
	}
	switch mode {
	case "deferred":
		deferredChild(st)
	case "write":
		run := os.Getenv(helperRunEnv)
		var wg sync.WaitGroup
		for g := range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					key := fmt.Sprintf("r%s-g%d-%06d", run, g, i)
					if err := st.Put(bg, cache.FunctionInsurability, key, crashValue(key)); err != nil {
						fmt.Fprintln(os.Stderr, "put:", err)
						os.Exit(4)
					}
					ack("P", key)
					err := st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "m-" + key, Partition: fmt.Sprintf("g%d", g), Service: "tarification", Payload: crashPayload(key)})
					if err != nil {
						fmt.Fprintln(os.Stderr, "enqueue:", err)
						os.Exit(5)
					}
					ack("E", "m-"+key)
				}
			}()
		}
		wg.Wait()
	case "replay":
		_, err := st.Outbox().Replay(bg, httpSender(os.Getenv(helperURLEnv)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "replay:", err)
			os.Exit(6)
		}
		ack("DONE", "")
	}
	_ = st.Close()
	os.Exit(0)
}

// httpSender posts a message to the dedup server: 2xx accepted, 4xx
// permanent, anything else transient.
func httpSender(url string) cache.SendFunc {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context, m cache.Message) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.Payload))
		if err != nil {
			return err
		}
		req.Header.Set("Idempotency-Key", m.IdempotencyKey)
		req.Header.Set("Partition", m.Partition)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return nil
		case resp.StatusCode < 500:
			return cache.Permanent(fmt.Errorf("status %d", resp.StatusCode))
		}
		return fmt.Errorf("status %d", resp.StatusCode)
	}
}

// dedupServer is an idempotent write service: it accepts each idempotency key
// once, answers a repeated key with the same success, fails some requests
// before accepting and loses the answer of some accepted ones.
//
// With a gate (gateAt > 0) it stops the replayer it serves at a known point:
// the request whose acceptance is the gateAt-th is recorded but not answered,
// every later request is held unanswered, until releaseGate. The gate closes
// once only; after releaseGate the server behaves as without one.
type dedupServer struct {
	mu        sync.Mutex
	requests  int
	accepted  map[string][]byte   // key → payload
	dups      map[string]int      // redeliveries of accepted keys
	order     map[string][]string // partition → keys in order of acceptance
	failures  int
	lostAcks  int
	badBodies int

	gateAt    int           // acceptances before the gate closes; 0 = no gate
	gatedKey  string        // the accepted message left unanswered at the gate
	held      int           // requests held at the gate, unanswered
	gated     chan struct{} // closed when the gate closes
	release   chan struct{} // closed by releaseGate
	releaseMu sync.Once
	released  bool
}

func newDedupServer(gateAt int) *dedupServer {
	return &dedupServer{
		accepted: map[string][]byte{}, dups: map[string]int{}, order: map[string][]string{},
		gateAt: gateAt, gated: make(chan struct{}), release: make(chan struct{}),
	}
}

// releaseGate lets the requests held at the gate end (with a 503 nobody
// reads: their client is dead by then) and opens the gate for good.
func (d *dedupServer) releaseGate() {
	d.releaseMu.Do(func() {
		d.mu.Lock()
		d.released = true
		d.mu.Unlock()
		close(d.release)
	})
}

func (d *dedupServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusInternalServerError)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	d.mu.Lock()
	if d.gatedKey != "" && !d.released {
		d.held++
		d.mu.Unlock()
		<-d.release
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	d.requests++
	if d.requests%7 == 0 { // down before accepting
		d.failures++
		d.mu.Unlock()
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if _, ok := d.accepted[key]; ok {
		d.dups[key]++
		d.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	if !bytes.Equal(body, crashPayload(strings.TrimPrefix(key, "m-"))) {
		d.badBodies++
		d.mu.Unlock()
		http.Error(w, "payload does not match its key", http.StatusBadRequest)
		return
	}
	d.accepted[key] = body
	p := r.Header.Get("Partition")
	d.order[p] = append(d.order[p], key)
	if d.gatedKey == "" && d.gateAt > 0 && len(d.accepted) == d.gateAt {
		// Accepted and recorded, but the answer never leaves before the
		// replayer is killed: the lost-ack case, at a known point.
		d.gatedKey = key
		d.mu.Unlock()
		close(d.gated)
		<-d.release
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	lost := d.requests%11 == 0 // accepted, but the answer is lost
	if lost {
		d.lostAcks++
	}
	d.mu.Unlock()
	if lost {
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// child starts the helper in mode and returns its command and a channel of
// the acknowledgement lines it prints (closed at its end).
func child(t *testing.T, mode, dir string, extra ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
	cmd.Env = append(cmd.Env, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child stderr: %s", stderr.String())
		}
	})
	return cmd, lines
}

// killed asserts the child died of SIGKILL (and not of its own accord).
func killed(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child ended by %v, not SIGKILL", err)
}

// outboxOf opens the store and returns its pending messages (by Export),
// checking that nothing in the file fails authentication.
func outboxOf(t *testing.T, dir string) (answers map[string][]byte, pending []string, payloads map[string][]byte) {
	t.Helper()
	st, err := cache.Open(crashConfig(dir))
	require.NoError(t, err, "the store opens after SIGKILL")
	defer st.Close()
	var buf bytes.Buffer
	res, err := st.Export(bg, &buf)
	require.NoError(t, err)
	require.Zero(t, res.Skipped, "no record fails authentication")
	answers, payloads = map[string][]byte{}, map[string][]byte{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		switch m["type"] {
		case "answer":
			e, err := st.Get(bg, cache.FunctionInsurability, m["key"].(string))
			require.NoError(t, err)
			answers[m["key"].(string)] = e.Value
		case "outbox":
			k := m["idempotency_key"].(string)
			pending = append(pending, k)
			var line struct {
				Payload []byte `json:"payload"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			payloads[k] = line.Payload
		}
	}
	require.Equal(t, len(pending), st.Outbox().Pending())
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.Zero(t, s.AuthFailures)
	return answers, pending, payloads
}

// TestCrash_KillNineWhileWritingThenReplayExactlyOnce kills a writing child
// with SIGKILL 20 times at moments drawn from -crash-seed (fixed by default,
// 0 = from the clock), checks that every acknowledged answer and message
// survived each kill, then replays the outbox in a child that the dedup
// server stops a third of the way (one message accepted, its answer held) and
// that is killed there, and finishes the replay in this process: each message
// accepted exactly once, in order within its partition, the cut-off one
// redelivered and deduplicated.
func TestCrash_KillNineWhileWritingThenReplayExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("kill moments from -crash-seed=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()

	ackedPuts := map[string]bool{}
	ackedEnq := map[string]bool{}
	const kills = 20
	for run := range kills {
		cmd, lines := child(t, "write", dir, helperRunEnv+"="+strconv.Itoa(run))
		collect := func(l string) (enqueued bool) {
			kind, key, _ := strings.Cut(l, " ")
			switch kind {
			case "P":
				ackedPuts[key] = true
			case "E":
				ackedEnq[key] = true
			}
			return kind == "E"
		}
		// Let it get going (one message enqueued, so that every run adds to
		// the outbox), then kill it at a random moment.
		for started := false; !started; {
			l, ok := <-lines
			require.True(t, ok, "child ended before enqueueing anything")
			started = collect(l)
		}
		deadline := time.After(time.Duration(rng.IntN(120)) * time.Millisecond)
	wait:
		for {
			select {
			case l := <-lines:
				collect(l)
			case <-deadline:
				break wait
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		for l := range lines {
			collect(l)
		}
		killed(t, cmd)

		answers, pending, payloads := outboxOf(t, dir)
		for k := range ackedPuts {
			require.Equal(t, crashValue(k), answers[k], "acknowledged answer %s lost or altered after kill %d", k, run)
		}
		for k := range ackedEnq {
			require.Equal(t, crashPayload(strings.TrimPrefix(k, "m-")), payloads[k], "acknowledged message %s lost or altered after kill %d", k, run)
		}
		require.GreaterOrEqual(t, len(pending), len(ackedEnq))
		require.GreaterOrEqual(t, len(answers), len(ackedPuts))
	}
	_, pending, _ := outboxOf(t, dir)
	t.Logf("%d kills: %d acknowledged answers, %d acknowledged messages, %d messages in the outbox", kills, len(ackedPuts), len(ackedEnq), len(pending))
	require.NotEmpty(t, pending)

	// Replay against the dedup server; the replayer is killed once mid-way.
	// The server holds every request once a third of the outbox is accepted
	// (the last of those accepted but unanswered), so the kill lands mid-replay
	// however slowly this process gets scheduled. Each replay worker has at
	// most one accepted message not yet removed (it removes a message before
	// sending the next), so more than Concurrency acceptances before the gate
	// mean some removals are durable.
	gateAt := len(pending) / 3
	require.Greater(t, gateAt, producers, "too few messages in the outbox to stop the replay a third of the way")
	srv := newDedupServer(gateAt)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.releaseGate() // before hs.Close, which waits for held requests
	cmd, lines := child(t, "replay", dir, helperURLEnv+"="+hs.URL)
	select {
	case <-srv.gated:
	case <-time.After(60 * time.Second): // a bound for a stuck replayer only
		t.Fatalf("the replayer did not get %d messages accepted", gateAt)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	for l := range lines {
		require.NotEqual(t, "DONE ", l, "the replayer finished before it was killed")
	}
	killed(t, cmd)
	srv.releaseGate()
	_, left, _ := outboxOf(t, dir)
	srv.mu.Lock()
	gatedKey, held := srv.gatedKey, srv.held
	srv.mu.Unlock()
	require.Contains(t, left, gatedKey, "the message accepted but not answered before the kill is still pending")
	require.Less(t, len(left), len(pending), "the replay removed what it delivered before the kill")
	t.Logf("replayer killed after %d acceptances, %d requests held, %d messages left", gateAt, held, len(left))

	st, err := cache.Open(crashConfig(dir))
	require.NoError(t, err)
	defer st.Close()
	res, err := st.Outbox().Replay(bg, httpSender(hs.URL))
	require.NoError(t, err)
	require.Zero(t, res.DeadLettered)
	require.Zero(t, st.Outbox().Pending())

	srv.mu.Lock()
	defer srv.mu.Unlock()
	t.Logf("server: %d requests, %d accepted, %d redeliveries deduplicated, %d failed before accepting, %d acks lost",
		srv.requests, len(srv.accepted), len(srv.dups), srv.failures, srv.lostAcks)
	require.Zero(t, srv.badBodies)
	got := make([]string, 0, len(srv.accepted))
	for k := range srv.accepted {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Clone(pending)
	slices.Sort(want)
	require.Equal(t, want, got, "every message in the outbox delivered, and nothing else")
	for k := range ackedEnq {
		require.Contains(t, srv.accepted, k)
	}
	require.Positive(t, srv.dups[gatedKey], "the message whose answer the kill cut off was redelivered and deduplicated")
	// Within a partition, first acceptances follow the enqueue order.
	for p, keys := range srv.order {
		require.True(t, slices.IsSortedFunc(keys, func(a, b string) int { return compareCrashKeys(a, b) }), "partition %s out of order", p)
	}
}

// compareCrashKeys orders "m-r<run>-g<g>-<i>" by run, then i.
func compareCrashKeys(a, b string) int {
	parse := func(s string) (int, int) {
		parts := strings.Split(strings.TrimPrefix(s, "m-r"), "-")
		run, _ := strconv.Atoi(parts[0])
		i, _ := strconv.Atoi(parts[2])
		return run, i
	}
	ra, ia := parse(a)
	rb, ib := parse(b)
	if ra != rb {
		return ra - rb
	}
	return ia - ib
}
