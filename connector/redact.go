package connector

import (
	"encoding/json"
	"fmt"
)

// The configuration holds secrets (licence and keystore passwords, the store's keys, private
// keys inside loaded credentials). Printing a Config, Credentials or PackageLicense with fmt
// (%v, %+v, %#v, %s) or encoding them to JSON (zap.Any) shows "[redacted]" in their place.

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
		s.Identification = "loaded " + c.Identification.Certificate.Subject.String()
	}
	if c.HolderOfKey != nil {
		s.HolderOfKey = "loaded " + c.HolderOfKey.Certificate.Subject.String()
	}
	return s
}

// Format prints the configuration with its secrets redacted (passwords, CacheKeys, keys).
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
