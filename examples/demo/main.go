// Command demo plays a pharmacy's morning against a local stand-in of the eHealth platform
// while the platform fails, and shows, with figures measured from what really happened, that
// the counters keep working.
//
//	go run ./examples/demo
//
// It needs no flags, no network and no set-up: it starts platformtest (two sites at two
// providers, on 127.0.0.1), registers a pharmacy and writes its PKCS#12 keystore, opens an
// ehgate client on a temporary encrypted store, and lets counters check insurability, fetch
// ETKs and send eHealthBox messages through four phases:
//
//  1. normal work;
//  2. the platform moves the insurability services to MyCareNet's BCP site by publishing a
//     newer signed service list (the production list keeps that endpoint INACTIVE until then),
//     the client follows it at its next poll, and the eHealth site dies: insurability stays
//     live at the other provider's site, ETKs come from the store, messages are queued;
//  3. the status feed announces a major outage and every site goes down: answers come from
//     the local store, marked as such, and writes are queued;
//  4. the platform returns and publishes the original list: the outbox is replayed, services
//     fail back, answers served from the store are checked again.
//
// It prints a line per event while it runs, a table per phase at the end, and, last,
//
//	summary: calls=N live=N cached=N errors=N queued=N replayed=N lost=N failover_ms=N
//
// Every figure is counted from the answers the counters got and from the writes the
// platform recorded (platformtest's Writes), never from the plan. Each phase gets its share
// of -duration, then runs on until it has shown what it is there to show (a live answer; a
// live answer from the fallback site; an answer from the store and a queued write; failback,
// an empty outbox and the store's answers checked again), for at most 20 s more, so that a
// slow machine makes the morning longer rather than emptier. The exit status is 1 when a
// write was lost, a counter saw an error for a patient the store held (or any other error),
// or a phase ended without what it waits for (no failover, say).
//
// Flags: -duration (length of the morning), -seed (population, choices, think times), -json
// (the figures as JSON on stdout; live lines, table and summary go to stderr), -v (also
// breaker moves, service-list updates and each outbox replay attempt), -console addr (serve
// the operator console at /console/ and Prometheus metrics at /metrics on addr while the
// morning runs, and print their URLs; requests from this machine act as operator "demo").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, plays the morning and prints its report; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := DefaultOptions()
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of the morning, shared by its four phases (a phase runs on, up to 20s more, until it has shown what it is for)")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "seed of the patient population, the counters' choices and their think times")
	fs.BoolVar(&o.JSON, "json", false, "print the figures as JSON on stdout (live lines, table and summary go to stderr)")
	fs.BoolVar(&o.Verbose, "v", false, "also show breaker moves, service-list updates and every replay attempt")
	fs.StringVar(&o.Console, "console", "", "serve the operator console (/console/) and Prometheus metrics (/metrics) on this address while the morning runs, e.g. 127.0.0.1:8080")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	human := stdout
	if o.JSON {
		human = stderr
	}
	rep, err := Run(ctx, o, human)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	rep.WriteTable(human)
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stderr, "demo: FAILED:", p)
	}
	fmt.Fprintln(human, rep.Summary.Line())
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

// Options are the demo's settings.
type Options struct {
	// Duration is the length of the morning; each phase gets a quarter.
	Duration time.Duration
	// Seed drives the platform's population and the counters' choices.
	Seed int64
	// Counters is how many counters work at once.
	Counters int
	// Patients is the size of the platform's population.
	Patients int
	// Settle bounds how long a phase runs on, after its quarter, until it has shown what it
	// is there to show (for the last one: failback, an empty outbox, the store's answers
	// checked again).
	Settle time.Duration
	JSON   bool
	// Verbose adds breaker moves, service-list updates and replay attempts to the live lines.
	Verbose bool
	// Console is the address of the admin server (operator console and /metrics) served
	// while the morning runs; "" = none.
	Console string
}

// DefaultOptions are the settings of `go run ./examples/demo`.
func DefaultOptions() Options {
	return Options{Duration: 16 * time.Second, Seed: 1, Counters: 4, Patients: 300, Settle: 20 * time.Second}
}

// Validate names the first unusable option.
func (o Options) Validate() error {
	switch {
	case o.Duration < 2*time.Second:
		return fmt.Errorf("-duration %s: at least 2s (four phases)", o.Duration)
	case o.Duration > 10*time.Minute:
		return fmt.Errorf("-duration %s: at most 10m", o.Duration)
	case o.Counters < 1 || o.Counters > 64:
		return fmt.Errorf("counters %d: 1 to 64", o.Counters)
	case o.Patients < 20:
		return fmt.Errorf("patients %d: at least 20", o.Patients)
	case o.Settle < 0:
		return fmt.Errorf("settle %s: negative", o.Settle)
	}
	return nil
}
