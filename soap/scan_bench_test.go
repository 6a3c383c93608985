package soap

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// benchAnswer is the connector's insurability answer (1.7 KB) in an envelope with a header,
// as connector's BenchmarkInsurabilityWire reads it.
func benchAnswer(b *testing.B) []byte {
	b.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "connector", "testdata", "answers", "insurability-success.xml"))
	if err != nil {
		b.Skip("no connector answer corpus:", err)
	}
	root := doc[bytes.Index(doc, []byte("\n<p:"))+1:]
	return append(append([]byte(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><x:H xmlns:x="urn:x">`+
		`<x:I/>text</x:H></soapenv:Header>`+"\n  <soapenv:Body>"), root...), "</soapenv:Body></soapenv:Envelope>"...)
}

// BenchmarkScanEnvelope: PostRaw's check of a 2xx answer, without the HTTP exchange.
func BenchmarkScanEnvelope(b *testing.B) {
	env := benchAnswer(b)
	if _, ok := scanEnvelope(env, DefaultLimits); !ok {
		b.Fatal("answer not read by the lexer")
	}
	b.SetBytes(int64(len(env)))
	b.ReportAllocs()
	for b.Loop() {
		scanEnvelope(env, DefaultLimits)
	}
}

// BenchmarkPostRaw: one PostRaw over loopback HTTP (the exchange dominates; allocations per
// call are the figure of interest).
func BenchmarkPostRaw(b *testing.B) {
	env := benchAnswer(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		_, _ = w.Write(env)
	}))
	defer srv.Close()
	c := NewClient(srv.Client(), ClientConfig{})
	ctx := context.Background()
	msg := []byte("<x/>")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.PostRaw(ctx, srv.URL, "urn:a", msg); err != nil {
			b.Fatal(err)
		}
	}
}
