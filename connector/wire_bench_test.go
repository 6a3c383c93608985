package connector

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkInsurabilityWire: the connector's own share of a live call's CPU, without the
// network and the signature: writing the request payload, reading an answer (in a SOAP
// envelope, as PostRaw gives it) and writing the stored record.
func BenchmarkInsurabilityWire(b *testing.B) {
	doc, err := os.ReadFile(filepath.Join("testdata", "answers", "insurability-success.xml"))
	if err != nil {
		b.Fatal(err)
	}
	env := inEnvelope(b, doc)
	req, err := InsurabilityRequest{SSIN: "93051822361", UserReference: "COUNTER-7"}.normalize(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	o := testOrigin()
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			buf = appendInsurabilityRequest(buf[:0], req, o, "12345678901234")
		}
	})
	b.Run("answer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseInsurabilityEnvelope(env, "12345678901234"); err != nil {
				b.Fatal(err)
			}
		}
	})
	a, _ := parseInsurabilityEnvelope(env, "12345678901234")
	b.Run("stored-json", func(b *testing.B) {
		b.ReportAllocs()
		s := stored[InsurabilityAnswer, InsurabilityRequest]{Request: req, Answer: a, Endpoint: "https://example/ins", AsOf: time.Now()}
		for b.Loop() {
			if _, err := appendStoredInsurability(make([]byte, 0, 1024), s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
