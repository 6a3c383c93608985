package connector

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// DefaultServiceListSubject is the subject of the platform's SERVICELIST certificate, the
// one that signs the production and acceptance service lists ("CBE=0809394427, SERVICELIST",
// eHealth-platform Belgium), as crypto/x509 renders it (pkix.Name.String: the four OU values
// become one multi-valued RDN).
const DefaultServiceListSubject = `CN=CBE=0809394427\, SERVICELIST,OU=SERVICELIST+OU=CBE=0809394427+OU=EHEALTH-PLATFORM+OU=eHealth-platform Belgium,O=Federal Government,C=BE`

// ServiceListSigner pins the certificate allowed to sign the service list, on top of its
// chain to ServiceListRoots: without it any certificate of that CA (a TLS server certificate,
// another organisation's) could sign a list. The zero value pins DefaultServiceListSubject.
type ServiceListSigner struct {
	// Subject is the signer's subject as crypto/x509 renders it (x509.Certificate.Subject.
	// String()). "" = DefaultServiceListSubject when Fingerprints is empty, any subject
	// otherwise.
	Subject string
	// Fingerprints are the hex SHA-256 fingerprints of the certificates allowed to sign
	// (case, ':' and spaces ignored). Empty = any certificate with the subject.
	Fingerprints []string
}

// ErrServiceListSigner says the list's signer chains to the roots but is not the pinned one.
var ErrServiceListSigner = errors.New("connector: service list signer is not the pinned certificate")

// check refuses a certificate that is not the pinned one.
func (s ServiceListSigner) check(cert *x509.Certificate) error {
	subject := s.Subject
	if subject == "" && len(s.Fingerprints) == 0 {
		subject = DefaultServiceListSubject
	}
	if subject != "" && cert.Subject.String() != subject {
		return fmt.Errorf("%w: subject %q, want %q", ErrServiceListSigner, cert.Subject.String(), subject)
	}
	if len(s.Fingerprints) == 0 {
		return nil
	}
	sum := sha256.Sum256(cert.Raw)
	got := hex.EncodeToString(sum[:])
	for _, f := range s.Fingerprints {
		if normalizeFingerprint(f) == got {
			return nil
		}
	}
	return fmt.Errorf("%w: sha256 fingerprint %s is not pinned", ErrServiceListSigner, got)
}

// badFingerprint returns the index of a fingerprint that is not 32 bytes of hex, or -1.
func (s ServiceListSigner) badFingerprint() int {
	for i, f := range s.Fingerprints {
		if b, err := hex.DecodeString(normalizeFingerprint(f)); err != nil || len(b) != sha256.Size {
			return i
		}
	}
	return -1
}

func normalizeFingerprint(f string) string {
	return strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(f))
}
