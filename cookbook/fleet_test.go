package cookbook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/pgstore"
)

// Chapter 9: running a fleet. Two instances of a hosted pharmacy program (in production two
// processes, often in two datacenters) share one PostgreSQL database: an answer one stored
// is served in fallback by the other, a write one queued while the platform was down is
// delivered once by whichever replays first, and the token is asked once for both.
//
// It needs a PostgreSQL server (EHGATE_TEST_POSTGRES_URL; ./test.sh starts one), so it is a
// test rather than an Example; it prints the chapter's output lines with -v.
func TestFleet_RunningAFleet(t *testing.T) {
	url := os.Getenv("EHGATE_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to run the chapter against")
	}
	var out strings.Builder
	say := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }

	// One pool per process, shared by every pharmacy the process serves.
	db, err := pgstore.Open(bg, pgstore.Config{URL: url, MaxConns: 10, QueryTimeout: 5 * time.Second})
	must(err)
	defer db.Close()

	dir := tempDir()
	defer os.RemoveAll(dir)
	key := newKey() // every instance of the fleet has the same keys, from the key store
	tenant := fmt.Sprintf("pharmacy-%s-%d", pharmacy().NIHII, time.Now().UnixNano())
	instance := func() *connector.Client {
		cfg := pharmacyConfig(dir)
		cfg.CacheDir = ""        // nothing on the instance's disk
		cfg.StoreBackend = db    // the shared, encrypted store
		cfg.StoreTenant = tenant // this pharmacy's records, the same name on every instance
		cfg.StoreLease = 5 * time.Second
		cfg.CacheKeys = [][]byte{key}
		c, err := connector.New(cfg)
		must(err)
		return c
	}
	p := platform()
	stsBefore := p.TokensIssued()
	a := instance()
	defer a.Close()
	pt := insured(11)
	live, err := a.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN})
	must(err)
	say("instance a: %s answer", live.Source)

	b := instance()
	defer b.Close()
	must(b.ActivateFallback(connector.ServiceInsurability, "chapter 9"))
	res, err := b.Insurability(bg, connector.InsurabilityRequest{SSIN: pt.SSIN})
	must(err)
	say("instance b in fallback: %s answer, stored by a: %t", res.Source, res.AsOf.Equal(live.AsOf))
	must(b.EndFallback(connector.ServiceInsurability))

	restore := allSitesDown()
	r, err := a.SendMessage(bg, connector.EHealthBoxMessage{
		PublicationID: fmt.Sprintf("CH9%010d", time.Now().UnixNano()%1e10), Partition: pt.SSIN, Title: "Dispensation notice",
		Recipients: []connector.EHealthBoxAddress{{ID: "10082533004", Type: "NIHII", Quality: "DOCTOR"}},
		Content:    []byte("sealed for the prescriber"), Encrypted: true,
	})
	must(err)
	say("write on a while the platform is down: queued %t, pending seen by b: %d", r.Queued, b.Status().Outbox.Pending)
	a.Close() // instance a goes away; b replays its write
	restore()
	deadline := time.Now().Add(60 * time.Second)
	for b.Status().Outbox.Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	delivered := 0
	for _, w := range p.Writes() {
		if w.Key == r.Key {
			delivered++
		}
	}
	say("delivered by b: %d time(s)", delivered)
	say("token requests for the two instances: %d", p.TokensIssued()-stsBefore)

	// The database goes away: fallback answers and writes say why they cannot be served.
	broken, err := pgstore.Open(bg, pgstore.Config{URL: "postgres://ehgate@127.0.0.1:1/ehgate?connect_timeout=1", QueryTimeout: time.Second})
	must(err) // opening does not need the database: the schema is checked on first use
	defer broken.Close()
	cfg := pharmacyConfig(dir)
	cfg.CacheDir, cfg.StoreBackend, cfg.StoreTenant, cfg.CacheKeys = "", broken, tenant, [][]byte{key}
	c, err := connector.New(cfg)
	must(err)
	defer c.Close()
	must(c.ActivateFallback(connector.ServiceInsurability, "chapter 9"))
	_, err = c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: pt.SSIN})
	say("fallback read with the database down: store unavailable %t", errors.Is(err, cache.ErrUnavailable))

	want := `instance a: live answer
instance b in fallback: cache answer, stored by a: true
write on a while the platform is down: queued true, pending seen by b: 1
delivered by b: 1 time(s)
token requests for the two instances: 1
fallback read with the database down: store unavailable true
`
	t.Log("\n" + out.String())
	if out.String() != want {
		t.Fatalf("chapter output:\n%s\nwant:\n%s", out.String(), want)
	}
}
