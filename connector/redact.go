package connector

import (
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
)

// The configuration holds secrets (licence and keystore passwords, the store's keys, private
// keys inside loaded credentials) and personal data (the holder's SSIN). Printing a Config,
// Credentials, PackageLicense or Identity with fmt (%v, %+v, %#v, %s) or encoding the last
// three to JSON (zap.Any) shows "[redacted]" in their place.

const redacted = "[redacted]"

func (p PackageLicense) redact() PackageLicense {
	if p.Password != "" {
		p.Password = redacted
	}
	return p
}

func (c Credentials) redact() Credentials {
	if c.Password != "" {
		c.Password = redacted
	}
	return c
}

// Format prints the licence with its password redacted.
func (p PackageLicense) Format(f fmt.State, verb rune) {
	type plain PackageLicense
	formatRedacted(f, verb, plain(p.redact()))
}

// MarshalJSON encodes the licence with its password redacted.
func (p PackageLicense) MarshalJSON() ([]byte, error) {
	type plain PackageLicense
	return json.Marshal(plain(p.redact()))
}

// Format prints the credentials' file names; the password and loaded keys are redacted.
func (c Credentials) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, c.summary())
}

// MarshalJSON encodes the credentials' file names; the password and loaded keys are redacted.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.summary()) }

type credentialsSummary struct {
	Identification, HolderOfKey  string
	PKCS12File, Password         string
	CertFile, KeyFile, ChainFile string
}

func (c Credentials) summary() credentialsSummary {
	c = c.redact()
	s := credentialsSummary{PKCS12File: c.PKCS12File, Password: c.Password, CertFile: c.CertFile, KeyFile: c.KeyFile, ChainFile: c.ChainFile}
	if c.Identification != nil {
		s.Identification = "loaded " + subjectRedacted(c.Identification.Certificate.Subject)
	}
	if c.HolderOfKey != nil {
		s.HolderOfKey = "loaded " + subjectRedacted(c.HolderOfKey.Certificate.Subject)
	}
	return s
}

// subjectRedacted renders a certificate subject without its serialNumber attribute, which
// holds the holder's SSIN in eHealth and eID certificates.
func subjectRedacted(n pkix.Name) string {
	if n.SerialNumber != "" {
		n.SerialNumber = redacted
	}
	return n.String()
}

func (i Identity) redact() Identity {
	if i.SSIN != "" {
		i.SSIN = redacted
	}
	return i
}

// Format prints the identity with the holder's SSIN redacted (personal data).
func (i Identity) Format(f fmt.State, verb rune) {
	type plain Identity
	formatRedacted(f, verb, plain(i.redact()))
}

// MarshalJSON encodes the identity with the holder's SSIN redacted.
func (i Identity) MarshalJSON() ([]byte, error) {
	type plain Identity
	return json.Marshal(plain(i.redact()))
}

// Format prints the configuration with its secrets redacted (passwords, CacheKeys, keys)
// and the holder's SSIN too.
func (c Config) Format(f fmt.State, verb rune) {
	type plain Config
	keys := make([][]byte, len(c.CacheKeys))
	for i := range keys {
		keys[i] = []byte(redacted)
	}
	c.CacheKeys = keys
	c.ServiceListBuiltin = nil // public, but hundreds of KiB printed as numbers
	formatRedacted(f, verb, plain(c))
}

// formatRedacted prints v with the verb and flags of f.
func formatRedacted(f fmt.State, verb rune, v any) {
	format := "%"
	for _, flag := range "+-# 0" {
		if f.Flag(int(flag)) {
			format += string(flag)
		}
	}
	fmt.Fprintf(f, format+string(verb), v)
}
