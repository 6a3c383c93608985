package cookbook_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
)

var (
	gpOnce sync.Once
	gp     *platformtest.Identity
)

// Chapter 1, second recipe: a general practitioner whose certificate and key are PEM files,
// asking GenericInsurability (the service for care providers other than pharmacists).
func Example_generalPractitionerWithPEM() {
	p := platform()
	gpOnce.Do(func() {
		var err error
		gp, err = p.NewIdentity(platformtest.GP, "Dr. Peeters")
		must(err)
	})
	dir := tempDir()
	defer os.RemoveAll(dir)

	certPEM, keyPEM := gp.PEM() // the certificate followed by its chain, and the PKCS#8 key
	certFile, keyFile := filepath.Join(dir, "gp.crt"), filepath.Join(dir, "gp.key")
	must(os.WriteFile(certFile, certPEM, 0o600))
	must(os.WriteFile(keyFile, keyPEM, 0o600))

	cfg := pharmacyConfig(dir) // the same platform, roots and store as the pharmacy's
	cfg.Credentials = connector.Credentials{CertFile: certFile, KeyFile: keyFile}
	cfg.Identity = connector.Identity{Preset: connector.PresetGP, NIHII: gp.NIHII, SSIN: gp.SSIN}
	client, err := connector.New(cfg)
	must(err)
	defer client.Close()

	res, err := client.GenericInsurability(bg, connector.GenericInsurabilityRequest{SSIN: insured(11).SSIN})
	must(err)
	fmt.Println("source:", res.Source, "items:", len(res.Answer.Items), "insured today:", res.Answer.Insured(time.Now()))
	fmt.Println("preset:", cfg.Identity.Preset, "token valid:", client.Status().Token.Valid)

	// Output:
	// source: live items: 1 insured today: true
	// preset: gp token valid: true
}
