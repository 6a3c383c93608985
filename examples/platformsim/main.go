// Command platformsim runs platformtest's stand-in for the eHealth platform
// on loopback, so that a vendor can point their own software at it and
// switch faults on and off while it runs.
//
//	go run ./examples/platformsim
//
// It prints the service list, status feed and site URLs, writes to -dir (a
// temporary directory by default, removed at exit) the TLS CA (ca.pem), the
// CA of the service list's signer (servicelist-ca.pem), the STS's signing
// certificate (sts.pem), a registered pharmacy's keystore (pharmacy.p12) and
// the generated patients with the insurability answer each one gets
// (patients.json, also served at GET /patients), so that software in any
// language can be pointed at it. With -port N the addresses stay the same
// from run to run: the service list and status feed on 127.0.0.1:N, the
// sites on N+1 and N+2. It takes commands on a plain-HTTP control endpoint on
// 127.0.0.1 (-control):
//
//	curl -X POST 'http://127.0.0.1:PORT/fault?site=ehealth&service=insurability&kind=refuse'
//	curl -X POST 'http://127.0.0.1:PORT/fault?site=mycarenet&kind=delay&delay=3s'
//	curl -X POST 'http://127.0.0.1:PORT/clear?site=ehealth'
//	curl -X POST 'http://127.0.0.1:PORT/endpoint?service=insurability&site=ehealth&status=inactive'
//	curl -X POST 'http://127.0.0.1:PORT/component?name=Insurability&status=Major+Outage'
//	curl -X POST 'http://127.0.0.1:PORT/scenario?name=outage&unit=10s'
//	curl 'http://127.0.0.1:PORT/counters'
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "platformsim:", err)
		os.Exit(1)
	}
}

// run starts the simulator with args and serves until ctx ends.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("platformsim", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := config{}
	fs.StringVar(&cfg.dir, "dir", "", "directory for ca.pem and pharmacy.p12 (default: a temporary directory removed at exit)")
	fs.StringVar(&cfg.control, "control", "127.0.0.1:0", "address of the plain-HTTP control endpoint (loopback)")
	fs.Int64Var(&cfg.seed, "seed", 1, "seed of the generated patient population")
	fs.IntVar(&cfg.patients, "patients", 500, "size of the generated patient population")
	fs.IntVar(&cfg.listVersion, "list-version", 2, "namespace version of the service list (1 or 2)")
	fs.DurationVar(&cfg.tokenLifetime, "token-lifetime", 0, "lifetime of issued tokens (0 = 5h)")
	fs.StringVar(&cfg.password, "password", "platformsim", "password of pharmacy.p12")
	fs.BoolVar(&cfg.activeBCP, "active-bcp", false, "list the MyCareNet BCP endpoints ACTIVE from the start (two ACTIVE endpoints; default: the production shape, BCP INACTIVE)")
	fs.IntVar(&cfg.port, "port", 0, "fixed ports: the service list and status feed on 127.0.0.1:PORT, the sites on PORT+1, PORT+2 (0 = free ports)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.dir == "" {
		dir, err := os.MkdirTemp("", "platformsim-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.dir = dir
	}
	sim, err := startSim(cfg, out)
	if err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return sim.close()
}
