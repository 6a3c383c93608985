package sts

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ehgate/ehgate/x500"
)

// SignerPin says which certificate may sign the STS's assertions, on top of chaining to
// ProviderConfig.STSRoots: a CA issues certificates to many holders (care providers' own
// certificates among them), and only the STS's may vouch for a token. A certificate is
// accepted when its subject is one of Subjects or its fingerprint one of Fingerprints.
// The zero SignerPin stands for PlatformSTS.
type SignerPin struct {
	// Subjects are accepted subject names, written as Java's RFC 1779 rendering
	// (x500.RFC1779), e.g. `CN="CBE=0809394427, IAMACC", OU=eHealth-platform Belgium, …`.
	Subjects []string
	// Fingerprints are accepted SHA-256 fingerprints of the certificate's DER, in hex (case,
	// colons and spaces ignored).
	Fingerprints []string
}

// Subjects of the platform's STS signing certificates.
const (
	// SubjectSTSAcceptance signed the acceptance STS's assertions under two CAs (QuoVadis,
	// 2018-2021, and ZetesConfidens, 2021-2024): the subject is what stays. Sources:
	// taktik/freehealth-connector compiled/RECIPE.1.9.1/examples/command-line/session.xml (a
	// real acceptance assertion, its KeyInfo) and egelke/eHI
	// library-core-tests/files/Old/IAMACC.cer.
	SubjectSTSAcceptance = `CN="CBE=0809394427, IAMACC", OU=eHealth-platform Belgium, OU=EHEALTH-PLATFORM, OU="CBE=0809394427", OU=IAMACC, O=Federal Government, C=BE`
	// SubjectSTSProduction is the production STS's subject INFERRED from the platform's naming
	// of its IAM certificates (IAMACC in acceptance, IAMINT in integration, the application
	// name in the CN and in an OU): no public source holds a production STS certificate.
	// Check it against one real production token (or pin Fingerprints) before relying on it.
	SubjectSTSProduction = `CN="CBE=0809394427, IAM", OU=eHealth-platform Belgium, OU=EHEALTH-PLATFORM, OU="CBE=0809394427", OU=IAM, O=Federal Government, C=BE`
)

// PlatformSTS pins the platform's STS certificates of production and acceptance by subject.
var PlatformSTS = SignerPin{Subjects: []string{SubjectSTSProduction, SubjectSTSAcceptance}}

func (p SignerPin) isZero() bool { return len(p.Subjects) == 0 && len(p.Fingerprints) == 0 }

// Validate names the first entry of p that cannot match any certificate.
func (p SignerPin) Validate() error {
	for i, s := range p.Subjects {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("sts: SignerPin.Subjects[%d] is empty", i)
		}
	}
	for i, f := range p.Fingerprints {
		if b, err := hex.DecodeString(normalFingerprint(f)); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("sts: SignerPin.Fingerprints[%d] is not a hex SHA-256", i)
		}
	}
	return nil
}

func normalFingerprint(f string) string {
	return strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(f))
}

// pinned is a SignerPin ready for matching.
type pinned struct {
	subjects     map[string]bool
	fingerprints map[string]bool
}

func (p SignerPin) compile() pinned {
	if p.isZero() {
		p = PlatformSTS
	}
	c := pinned{subjects: map[string]bool{}, fingerprints: map[string]bool{}}
	for _, s := range p.Subjects {
		c.subjects[s] = true
	}
	for _, f := range p.Fingerprints {
		c.fingerprints[normalFingerprint(f)] = true
	}
	return c
}

// check returns nil when cert is pinned, else a detail naming its subject (an STS or CA
// certificate's name, never personal data of ours: a care provider's own certificate would
// only sign if it were the attacker's).
func (c pinned) check(cert *x509.Certificate) error {
	sum := sha256.Sum256(cert.Raw)
	if c.fingerprints[hex.EncodeToString(sum[:])] {
		return nil
	}
	subject, err := x500.RFC1779(cert.RawSubject)
	if err == nil && c.subjects[subject] {
		return nil
	}
	return fmt.Errorf("signer sha256 %s is not pinned", hex.EncodeToString(sum[:8]))
}
