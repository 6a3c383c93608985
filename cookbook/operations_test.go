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

	// Key rotation: the new key first (it encrypts), the old one after it (it still decrypts).
	cfg.CacheKeys = [][]byte{newKey(), oldKey}
	client, err = connector.New(cfg)
	must(err)
	defer client.Close()
	must(client.ActivateFallback(connector.ServiceInsurability, "show the store"))
	res, err := client.Insurability(bg, connector.InsurabilityRequest{SSIN: patient})
	must(err)
	fmt.Println("answer stored under the old key, served after rotation:", res.Source == connector.SourceCache)
	must(client.EndFallback(connector.ServiceInsurability))

	// Output:
	// mode changes logged: true patient in a log: false
	// stored insurability answers: 1 outbox pending: 0 requests sent: true
	// answer stored under the old key, served after rotation: true
}
