package platformtest_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ehgate/ehgate/platformtest"
)

// BenchmarkInsurability_VerifiedRequestOverHTTPS measures one insurability
// call as the platform serves it: HTTPS on loopback (kept-alive
// connection), WS-Security and assertion verification, the answer.
func BenchmarkInsurability_VerifiedRequestOverHTTPS(b *testing.B) {
	p, err := platformtest.Start(platformtest.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	id, err := p.NewIdentity(platformtest.Pharmacy, "bench")
	if err != nil {
		b.Fatal(err)
	}
	token := issue(b, p, "ehealth", id)
	var ssin string
	for _, pt := range p.Patients() {
		if pt.Insured {
			ssin = pt.SSIN
			break
		}
	}
	msg := signWithToken(b, id.Key, token, insurabilityRequest(ssin, time.Now()))
	url := p.URL(platformtest.ServiceInsurability, "ehealth")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(msg))
		req.Header.Set("SOAPAction", platformtest.ActionInsurability)
		resp, err := p.HTTPClient().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkStart measures starting and closing a platform once the
// process's key pool is warm (what every test after the first pays).
func BenchmarkStart(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, err := platformtest.Start(platformtest.Config{})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}
