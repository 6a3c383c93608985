package platformtest_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// Faults switch while traffic flows: every request is answered or dropped
// as the fault of the moment says, and every one is counted once.
func TestOutageScenario_UnderConcurrentTraffic(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Soak")
	require.NoError(t, err)
	token := issue(t, p, "ehealth", id)
	patient := pick(t, p, func(pt platformtest.Patient) bool { return pt.Insured })
	msg := signWithToken(t, id.Key, token, insurabilityRequest(patient.SSIN, time.Now()))

	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := plainClient(t, p, 5*time.Second)
			url := p.URL(platformtest.ServiceInsurability, []string{"ehealth", "mycarenet"}[w%2])
			for ctx.Err() == nil {
				sent.Add(1)
				resp, err := send(c, url, msg)
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	require.NoError(t, p.Play(context.Background(), platformtest.OutageScenario(5*time.Millisecond)))
	cancel()
	wg.Wait()

	counted := 0
	for k, v := range p.Counters() {
		if k.Service == platformtest.ServiceInsurability {
			require.Contains(t, []platformtest.Outcome{platformtest.OutcomeOK, platformtest.OutcomeInjected}, k.Outcome)
			counted += v
		}
	}
	require.Equal(t, int(sent.Load()), counted, "every request counted once")
	status, b := post(t, p.HTTPClient(), p.URL("insurability", "ehealth"), platformtest.ActionInsurability, msg)
	require.Equal(t, http.StatusOK, status, string(b))
}
