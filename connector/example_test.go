package connector_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/sts"
)

// Open a client on the platform stand-in, check a patient live, then again while every site
// is down: the answer comes from the encrypted local store and says so.
func Example() {
	p, err := platformtest.Start(platformtest.Config{Patients: 20, Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	id, _ := p.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	cred, _ := sts.NewCredential(id.Certificate, id.Key, nil, "example", sts.LoadOptions{})
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	key := make([]byte, 32)
	_, _ = rand.Read(key)

	c, err := connector.New(connector.Config{
		ServiceListURL:   p.ServiceListBaseURL(),
		ServiceListRoots: p.ServiceListRoots(),
		TLSRoots:         p.CACertPool(),
		STSRoots:         p.STSRoots(),
		Credentials:      connector.Credentials{Identification: cred},
		Identity:         connector.Identity{Preset: connector.PresetPharmacy, NIHII: id.NIHII, SSIN: id.SSIN},
		Package:          connector.PackageLicense{Name: "example", Username: "vendor", Password: "secret"},
		CacheDir:         dir,
		CacheKeys:        [][]byte{key},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var patient platformtest.Patient
	for _, pt := range p.Patients() {
		if pt.Known && pt.Insured {
			patient = pt
			break
		}
	}
	ctx := context.Background()
	res, err := c.Insurability(ctx, connector.InsurabilityRequest{SSIN: patient.SSIN})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("source:", res.Source, "degraded:", res.Degraded, "insured:", res.Answer.Insured(res.AsOf))
	fmt.Println("regime matches the insurer's:", res.Answer.Coverages[0].Entitlement.ThirdPartyPayerRegime == connector.ThirdPartyPayerRegime(patient.Regime))

	for _, s := range p.Sites() {
		s.Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultRefuse})
	}
	res, err = c.Insurability(ctx, connector.InsurabilityRequest{SSIN: patient.SSIN})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("source:", res.Source, "degraded:", res.Degraded, "insured:", res.Answer.Insured(res.AsOf))
	mode, cause := c.Mode(connector.ServiceInsurability)
	fmt.Println("mode:", mode, "-", cause)
	// Output:
	// source: live degraded: false insured: true
	// regime matches the insurer's: true
	// source: cache degraded: true insured: true
	// mode: fallback - every endpoint failed
}

// A wrong SSIN is the caller's error, found before any network call; the error does not
// repeat the number.
func ExampleValidateSSIN() {
	fmt.Println(connector.ValidateSSIN("93051822361"))
	fmt.Println(connector.ValidateSSIN("93051822362"))
	// Output:
	// <nil>
	// connector: invalid ssin: checksum
}

// The platform's CA files become the Config's trust pools; a wrong file is named with what
// is wrong in it (here a README given instead of a certificate).
func ExampleCertPoolFromPEMFiles() {
	cfg := connector.DefaultConfigFor(connector.Acceptance)
	var err error
	cfg.ServiceListRoots, err = connector.CertPoolFromPEMFiles("testdata/cafiles/ehealth-servicelist-signer-prod.pem")
	fmt.Println("service-list roots loaded:", err == nil)

	cfg.STSRoots, err = connector.CertPoolFromPEMFiles("testdata/cafiles/README.md")
	var bad *connector.CertFileError
	fmt.Println(errors.As(err, &bad), bad.File, "-", bad.Reason)
	fmt.Println(err)
	// Output:
	// service-list roots loaded: true
	// true testdata/cafiles/README.md - no PEM block
	// connector: CA file testdata/cafiles/README.md: no PEM block
}
