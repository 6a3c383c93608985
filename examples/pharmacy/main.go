// Command pharmacy is a counter's command line: check whether patients are insured and see
// how each service is being served (live, by the fallback site, or from the local store).
//
//	go run ./examples/pharmacy                 # against its own stand-in of the platform
//	go run ./examples/pharmacy -outage         # … and again with every site of the stand-in down
//	go run ./examples/pharmacy -i              # read SSINs from standard input, one per line
//
// With no -env and no -servicelist it starts platformtest on 127.0.0.1, registers a pharmacy,
// and checks a few of the stand-in's patients (or the SSINs given as arguments). To use a
// real environment, give its service list, trust roots, keystore and store:
//
//	EHGATE_P12_PASSWORD=... EHGATE_LICENCE_PASSWORD=... go run ./examples/pharmacy \
//	  -env acceptance -list-ca servicelist-ca.pem -sts-ca sts-ca.pem \
//	  -p12 pharmacy.p12 -nihii 12345678 -holder 85073003328 -licence-user vendor \
//	  -store /var/lib/pharmacy/ehgate -key-file /etc/pharmacy/store.key  85073003328
//
// The key file holds the store's 32-byte key in hex. SSINs are shown masked: only their last
// four digits.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the command's flags.
type options struct {
	env, listURL, listCA, stsCA, tlsCA string
	p12, nihii, holder, licenceUser    string
	store, keyFile                     string
	statusFeed                         string
	interactive, outage                bool
	timeout                            time.Duration
}

// run is the command; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pharmacy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.env, "env", "", "real environment: production or acceptance (default: a local stand-in)")
	fs.StringVar(&o.listURL, "servicelist", "", "service list base URL (instead of -env)")
	fs.StringVar(&o.listCA, "list-ca", "", "PEM file: CA of the service list's signer")
	fs.StringVar(&o.stsCA, "sts-ca", "", "PEM file: CA of the STS's assertion signer")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM file: CA of the platform's TLS certificates (default: the system's)")
	fs.StringVar(&o.p12, "p12", "", "the pharmacy's PKCS#12 keystore (password in $EHGATE_P12_PASSWORD)")
	fs.StringVar(&o.nihii, "nihii", "", "the pharmacy's NIHII number")
	fs.StringVar(&o.holder, "holder", "", "the SSIN of the keystore's holder")
	fs.StringVar(&o.licenceUser, "licence-user", "", "MyCareNet licence user (password in $EHGATE_LICENCE_PASSWORD)")
	fs.StringVar(&o.store, "store", "", "directory of the encrypted local store")
	fs.StringVar(&o.keyFile, "key-file", "", "file holding the store's 32-byte key in hex")
	fs.StringVar(&o.statusFeed, "status-feed", "", "status page feed URL (real environment; default: not read)")
	fs.BoolVar(&o.interactive, "i", false, "read SSINs from standard input, one per line")
	fs.BoolVar(&o.outage, "outage", false, "stand-in only: check again with every site down")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Second, "bound of each check")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	real := o.env != "" || o.listURL != ""
	if o.outage && real {
		fmt.Fprintln(stderr, "pharmacy: -outage works only with the local stand-in")
		return 2
	}

	var (
		cfg      connector.Config
		ssins    = fs.Args()
		stand    *platformtest.Platform
		err      error
		cleanups []func()
	)
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	if real {
		cfg, err = realConfig(o)
		if err != nil {
			fmt.Fprintln(stderr, "pharmacy:", err)
			return 2
		}
	} else {
		fmt.Fprintln(stdout, "no -env given: starting a local stand-in of the platform (platformtest)")
		stand, cfg, cleanups, err = standIn()
		if err != nil {
			fmt.Fprintln(stderr, "pharmacy:", err)
			return 1
		}
		if len(ssins) == 0 && !o.interactive {
			ssins = samplePatients(stand)
		}
	}

	client, err := connector.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "pharmacy:", err)
		return 1
	}
	defer client.Close()
	c := counter{client: client, out: stdout, timeout: o.timeout}

	if o.interactive {
		sc := bufio.NewScanner(stdin)
		fmt.Fprintln(stdout, "SSIN (empty line or EOF to end):")
		for sc.Scan() && ctx.Err() == nil {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				break
			}
			ssins = append(ssins, line)
			c.check(ctx, line)
		}
	} else {
		for _, s := range ssins {
			c.check(ctx, s)
		}
	}
	c.modes()

	if o.outage {
		fmt.Fprintln(stdout, "\n-- every site of the stand-in goes down --")
		for _, s := range stand.Sites() {
			s.Inject("", platformtest.Fault{Kind: platformtest.FaultRefuse})
		}
		for _, s := range ssins {
			c.check(ctx, s)
		}
		c.modes()
	}
	return 0
}

// counter prints what the pharmacist needs to see.
type counter struct {
	client  *connector.Client
	out     io.Writer
	timeout time.Duration
}

func (c counter) check(ctx context.Context, ssin string) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	who := "patient " + mask(ssin)
	res, err := c.client.Insurability(ctx, connector.InsurabilityRequest{SSIN: ssin})
	var business *connector.BusinessError
	switch {
	case errors.Is(err, connector.ErrInvalidSSIN):
		fmt.Fprintf(c.out, "%s  not a valid SSIN (%v)\n", who, err)
	case errors.As(err, &business):
		fmt.Fprintf(c.out, "%s  the insurer says: code %s %s\n", who, business.Code, business.Message)
	case errors.Is(err, connector.ErrNotCached):
		fmt.Fprintf(c.out, "%s  NO ANSWER: the platform is unreachable and no answer is stored: full price, or trust the patient\n", who)
	case err != nil:
		fmt.Fprintf(c.out, "%s  error: %v\n", who, err)
	default:
		now := time.Now()
		insured := "no"
		regime := "-"
		if res.Answer.Insured(now) {
			insured = "yes"
			for _, cv := range res.Answer.Coverages {
				if !now.Before(cv.Begin) && (cv.End.IsZero() || !now.After(cv.End.Add(24*time.Hour))) {
					regime = string(cv.Entitlement.ThirdPartyPayerRegime)
				}
			}
		}
		from := "live from " + res.Endpoint
		if res.Source == connector.SourceCache {
			from = "LOCAL STORE, answer of " + res.AsOf.Local().Format("2006-01-02 15:04")
		}
		if res.Degraded {
			from += "  [EMERGENCY MODE]"
		}
		fmt.Fprintf(c.out, "%s  insured today: %-3s  regime: %-8s  %s\n", who, insured, regime, from)
	}
}

// modes prints how every service is being served.
func (c counter) modes() {
	for _, s := range c.client.Status().Services {
		line := fmt.Sprintf("  %-26s %s", s.Name, s.Mode)
		if s.Cause != "" {
			line += " (" + s.Cause + ")"
		}
		fmt.Fprintln(c.out, line)
	}
}

// mask shows the last four digits of an SSIN.
func mask(ssin string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, ssin)
	if len(digits) < 4 {
		return "…"
	}
	return "…" + digits[len(digits)-4:]
}

// samplePatients picks three insured patients and one unknown to the platform.
func samplePatients(p *platformtest.Platform) []string {
	var out []string
	unknown := ""
	for _, pt := range p.Patients() {
		switch {
		case pt.Known && pt.Insured && len(out) < 3:
			out = append(out, pt.SSIN)
		case !pt.Known && unknown == "":
			unknown = pt.SSIN
		}
	}
	return append(out, unknown)
}

// standIn starts platformtest and returns a Config for a pharmacy registered with it.
func standIn() (*platformtest.Platform, connector.Config, []func(), error) {
	var cleanups []func()
	p, err := platformtest.Start(platformtest.Config{Patients: 40, Seed: 7})
	if err != nil {
		return nil, connector.Config{}, nil, err
	}
	cleanups = append(cleanups, p.Close)
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	if err != nil {
		return nil, connector.Config{}, cleanups, err
	}
	dir, err := os.MkdirTemp("", "ehgate-pharmacy-")
	if err != nil {
		return nil, connector.Config{}, cleanups, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	password := rand.Text()
	p12, err := id.PKCS12(password)
	if err != nil {
		return nil, connector.Config{}, cleanups, err
	}
	keystore := filepath.Join(dir, "pharmacy.p12")
	if err := os.WriteFile(keystore, p12, 0o600); err != nil {
		return nil, connector.Config{}, cleanups, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, connector.Config{}, cleanups, err
	}
	cfg := connector.DefaultConfig()
	cfg.ServiceListURL = p.ServiceListBaseURL()
	cfg.ServiceListRoots = p.ServiceListRoots()
	cfg.TLSRoots = p.CACertPool()
	cfg.STSRoots = p.STSRoots()
	cfg.StatusFeedURL = p.StatusFeedURL()
	cfg.Credentials = connector.Credentials{PKCS12File: keystore, Password: password}
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: id.NIHII, SSIN: id.SSIN}
	cfg.Package = connector.PackageLicense{Name: "ehgate-pharmacy-example", Username: "vendor", Password: "licence"}
	cfg.IsTest = true
	cfg.CacheDir = filepath.Join(dir, "store")
	cfg.CacheKeys = [][]byte{key}
	return p, cfg, cleanups, nil
}

// realConfig builds the Config of a real environment from the flags; it names the missing flag.
func realConfig(o options) (connector.Config, error) {
	cfg := connector.DefaultConfig()
	cfg.StatusFeedURL = o.statusFeed
	switch o.env {
	case "production":
		cfg.Environment = connector.Production
	case "acceptance":
		cfg.Environment = connector.Acceptance
	case "":
		cfg.Environment = connector.EnvironmentNone
	default:
		return cfg, fmt.Errorf("-env %q: production or acceptance", o.env)
	}
	cfg.ServiceListURL = o.listURL
	required := []struct{ flag, value string }{
		{"-list-ca", o.listCA}, {"-sts-ca", o.stsCA}, {"-p12", o.p12}, {"-nihii", o.nihii},
		{"-holder", o.holder}, {"-licence-user", o.licenceUser}, {"-store", o.store}, {"-key-file", o.keyFile},
	}
	for _, r := range required {
		if r.value == "" {
			return cfg, fmt.Errorf("%s is required with a real environment", r.flag)
		}
	}
	var err error
	if cfg.ServiceListRoots, err = connector.CertPoolFromPEMFiles(o.listCA); err != nil {
		return cfg, fmt.Errorf("-list-ca: %w", err)
	}
	if cfg.STSRoots, err = connector.CertPoolFromPEMFiles(o.stsCA); err != nil {
		return cfg, fmt.Errorf("-sts-ca: %w", err)
	}
	if o.tlsCA != "" {
		if cfg.TLSRoots, err = connector.CertPoolFromPEMFiles(o.tlsCA); err != nil {
			return cfg, fmt.Errorf("-tls-ca: %w", err)
		}
	}
	raw, err := os.ReadFile(o.keyFile)
	if err != nil {
		return cfg, fmt.Errorf("-key-file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return cfg, errors.New("-key-file: want 64 hex digits (a 32-byte key)")
	}
	cfg.Credentials = connector.Credentials{PKCS12File: o.p12, Password: os.Getenv("EHGATE_P12_PASSWORD")}
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: o.nihii, SSIN: o.holder}
	cfg.Package = connector.PackageLicense{Name: "ehgate-pharmacy-example", Username: o.licenceUser, Password: os.Getenv("EHGATE_LICENCE_PASSWORD")}
	cfg.IsTest = o.env != "production"
	cfg.CacheDir = o.store
	cfg.CacheKeys = [][]byte{key}
	return cfg, cfg.Validate()
}
