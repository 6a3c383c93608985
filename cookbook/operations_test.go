package cookbook_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/connector"
)

// countingTransport counts the requests the client sends, as a vendor's metrics would.
type countingTransport struct {
	next     http.RoundTripper
	requests *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	return t.next.RoundTrip(r)
}

// Chapter 7: logs (zap, mode changes at info, never a patient), metrics (Status and a
// wrapped transport), and rotation of the store's key.
func Example_operations() {
	p := platform()
	dir := tempDir()
	defer os.RemoveAll(dir)
	cfg := pharmacyConfig(dir)
	oldKey := cfg.CacheKeys[0]

	core, logs := observer.New(zap.InfoLevel) // in production: your zap.Logger
	var requests atomic.Int64
	transport := countingTransport{next: connector.NewTransport(p.CACertPool(), 2*time.Second), requests: &requests}
	client, err := connector.New(cfg, connector.WithLogger(zap.New(core)), connector.WithTransport(transport))
	must(err)

	patient := insured(10).SSIN
	_, err = client.Insurability(bg, connector.InsurabilityRequest{SSIN: patient})
	must(err)
	must(client.ActivateFallback(connector.ServiceInsurability, "maintenance"))
	must(client.EndFallback(connector.ServiceInsurability))

	// Logs: mode changes at info with their cause; no SSIN anywhere at info or above.
	changes := logs.FilterMessage("connector: service mode changed").Len()
	leaked := false
	for _, e := range logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += fmt.Sprint(" ", k, "=", v)
		}
		leaked = leaked || strings.Contains(text, patient)
	}
	fmt.Println("mode changes logged:", changes > 0, "patient in a log:", leaked)

	// Metrics: Status holds counts only (nothing is decrypted to compute it).
	st := client.Status()
	fmt.Println("stored insurability answers:", st.Cache.Functions["insurability"].Count, "outbox pending:", st.Outbox.Pending,
		"requests sent:", requests.Load() > 0)
	must(client.Close())

	// Key rotation: the new key first (it encrypts), the old one after it (it still decrypts),
	// then Rekey rewrites the old records under the new key so the old one can be retired.
	newer := newKey()
	cfg.CacheKeys = [][]byte{newer, oldKey}
	client, err = connector.New(cfg)
	must(err)
	rekeyed, err := client.Rekey(bg)
	must(err)
	fmt.Println("records rewritten under the new key:", rekeyed > 0)
	must(client.Close())

	cfg.CacheKeys = [][]byte{newer} // the old key is gone
	client, err = connector.New(cfg)
	must(err)
	defer client.Close()
	must(client.ActivateFallback(connector.ServiceInsurability, "show the store"))
	res, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: patient})
	must(err)
	fmt.Println("answer served with the new key only:", res.Source == connector.SourceCache)
	must(client.EndFallback(connector.ServiceInsurability))

	// Retention and reversibility: nothing is past its retention yet; the export holds every
	// answer, decrypted (personal data: write it only where the data owner asked).
	purged, err := client.Purge(bg)
	must(err)
	var export strings.Builder
	exported, err := client.Export(bg, &export)
	must(err)
	fmt.Println("purged:", purged, "exported answers:", exported.Answers, "queued writes:", exported.Outbox,
		"holds the patient:", strings.Contains(export.String(), patient))

	// Output:
	// mode changes logged: true patient in a log: false
	// stored insurability answers: 1 outbox pending: 0 requests sent: true
	// records rewritten under the new key: true
	// answer served with the new key only: true
	// purged: 0 exported answers: 2 queued writes: 0 holds the patient: true
}
