package tracing_test

import (
	"context"
	"fmt"
	"os"
	"sort"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/tracing"
)

// Trace a client's calls with the vendor's TracerProvider (here the SDK with an in-memory
// exporter): one span per call, a child per step.
func ExampleNew() {
	p, _ := platformtest.Start(platformtest.Config{Patients: 20, Seed: 42})
	defer p.Close()
	id, _ := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	cfg, _ := clienttest.NewConfig(p, id, dir) // a connector.Config for the stand-in

	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer tp.Shutdown(context.Background())
	c, err := connector.New(cfg, connector.WithObserver(tracing.New(tp)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	patient := clienttest.Patients(p, 1)[0]
	_, _ = c.Insurability(context.Background(), connector.InsurabilityRequest{SSIN: patient.SSIN})

	spans := exporter.GetSpans()
	sort.Slice(spans, func(i, j int) bool { return spans[i].StartTime.Before(spans[j].StartTime) })
	for _, s := range spans {
		if s.Parent.IsValid() {
			fmt.Print("  ")
		}
		fmt.Println(s.Name)
	}
	// Output:
	// ehgate.insurability
	//   ehgate.token
	//   ehgate.sign
	//   ehgate.attempt
	//   ehgate.store_write
}
