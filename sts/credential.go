package sts

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Credential is a certificate with its private key, as used to authenticate to the STS
// (identification credential) or to sign business messages with a token (holder-of-key
// credential). A Credential is immutable after loading and safe for concurrent use.
type Credential struct {
	// Certificate is the end-entity certificate.
	Certificate *x509.Certificate
	// Key is the private key matching Certificate. ehgate signs with RSA only.
	Key crypto.Signer
	// Chain holds the issuing certificates delivered with Certificate, nearest issuer
	// first; it may be empty.
	Chain []*x509.Certificate
	// Source names where the credential came from (file names), for error messages.
	Source string
}

// LoadOptions says how a credential is checked when it is loaded.
type LoadOptions struct {
	// Now is the clock the certificate's validity period is checked against; nil = time.Now.
	Now func() time.Time
	// Roots, when set, is the pool the certificate must chain up to (through Chain). When nil
	// and a chain is given, the chain must be complete up to its last element.
	Roots *x509.CertPool
}

// Problems a credential can have, matched with errors.Is on a *CredentialError.
var (
	ErrBadPassword       = errors.New("sts: wrong keystore password")
	ErrBadKeystore       = errors.New("sts: unreadable keystore")
	ErrNoCertificate     = errors.New("sts: no certificate")
	ErrNoKey             = errors.New("sts: no private key")
	ErrUnsupportedKey    = errors.New("sts: unsupported private key")
	ErrKeyMismatch       = errors.New("sts: private key does not match certificate")
	ErrCertExpired       = errors.New("sts: certificate expired")
	ErrCertNotYetValid   = errors.New("sts: certificate not yet valid")
	ErrChainIncomplete   = errors.New("sts: certificate chain incomplete")
	ErrCredentialMissing = errors.New("sts: credential missing")
)

// CredentialError says which file of a credential has which problem. It never carries the
// keystore password.
type CredentialError struct {
	File    string // the file concerned (or a label when loaded from memory)
	Problem error  // one of the Err… sentinels of this package
	Err     error  // the underlying cause, if any
}

func (e *CredentialError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.File, e.Problem)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the problem sentinel and the underlying cause.
func (e *CredentialError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Problem}
	}
	return []error{e.Problem, e.Err}
}

// LoadPKCS12 reads a PKCS#12 keystore (.p12, .pfx) protected by password, as the platform
// delivers certificates, and checks it (see NewCredential). The end-entity certificate is the
// one matching the key; the other certificates form the chain.
func LoadPKCS12(path, password string, opts LoadOptions) (*Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &CredentialError{File: path, Problem: ErrBadKeystore, Err: err}
	}
	return ParsePKCS12(data, password, path, opts)
}

// ParsePKCS12 is LoadPKCS12 on keystore bytes; name labels the keystore in errors.
func ParsePKCS12(data []byte, password, name string, opts LoadOptions) (*Credential, error) {
	key, cert, others, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		problem := ErrBadKeystore
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			problem = ErrBadPassword
			err = nil // the library's message says nothing more; never echo the password
		}
		return nil, &CredentialError{File: name, Problem: problem, Err: err}
	}
	signer, err := asSigner(key)
	if err != nil {
		return nil, &CredentialError{File: name, Problem: ErrUnsupportedKey, Err: err}
	}
	// Keystores do not always put the end-entity certificate first: take the one that
	// matches the key, the rest is the chain.
	all := append([]*x509.Certificate{cert}, others...)
	leaf := -1
	for i, c := range all {
		if keyMatches(signer, c) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, &CredentialError{File: name, Problem: ErrKeyMismatch}
	}
	var chain []*x509.Certificate
	for i, c := range all {
		if i != leaf {
			chain = append(chain, c)
		}
	}
	return NewCredential(all[leaf], signer, orderChain(all[leaf], chain), name, opts)
}

// LoadPEM reads a certificate and its private key (PKCS#1 "RSA PRIVATE KEY" or PKCS#8
// "PRIVATE KEY", unencrypted) from PEM files, and the issuing chain from chainFile when it is
// not empty (certFile may also carry the chain after the certificate). It checks them as
// NewCredential does.
func LoadPEM(certFile, keyFile, chainFile string, opts LoadOptions) (*Credential, error) {
	certs, err := readPEMCertificates(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &CredentialError{File: keyFile, Problem: ErrNoKey, Err: err}
	}
	key, problem, cause := parsePEMKey(keyPEM)
	if problem != nil {
		return nil, &CredentialError{File: keyFile, Problem: problem, Err: cause}
	}
	chain := certs[1:]
	if chainFile != "" {
		more, err := readPEMCertificates(chainFile)
		if err != nil {
			return nil, err
		}
		chain = append(chain, more...)
	}
	source := certFile
	if !keyMatches(key, certs[0]) {
		return nil, &CredentialError{File: keyFile, Problem: ErrKeyMismatch, Err: fmt.Errorf("certificate in %s", certFile)}
	}
	return NewCredential(certs[0], key, chain, source, opts)
}

// NewCredential checks a certificate, key and chain and returns them as a Credential:
// the key must be RSA and match the certificate, the certificate must be inside its validity
// period at opts.Now, and the chain, when given or when opts.Roots is set, must verify.
func NewCredential(cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate, source string, opts LoadOptions) (*Credential, error) {
	if cert == nil {
		return nil, &CredentialError{File: source, Problem: ErrNoCertificate}
	}
	if key == nil {
		return nil, &CredentialError{File: source, Problem: ErrNoKey}
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, &CredentialError{File: source, Problem: ErrUnsupportedKey, Err: fmt.Errorf("%T (RSA required)", key.Public())}
	}
	if !keyMatches(key, cert) {
		return nil, &CredentialError{File: source, Problem: ErrKeyMismatch}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now()
	if t.Before(cert.NotBefore) {
		return nil, &CredentialError{File: source, Problem: ErrCertNotYetValid,
			Err: fmt.Errorf("valid from %s, now %s", cert.NotBefore.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))}
	}
	if t.After(cert.NotAfter) {
		return nil, &CredentialError{File: source, Problem: ErrCertExpired,
			Err: fmt.Errorf("valid until %s, now %s", cert.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))}
	}
	if len(chain) > 0 || opts.Roots != nil {
		if err := verifyChain(cert, chain, opts.Roots, t); err != nil {
			return nil, &CredentialError{File: source, Problem: ErrChainIncomplete, Err: err}
		}
	}
	return &Credential{Certificate: cert, Key: key, Chain: append([]*x509.Certificate(nil), chain...), Source: source}, nil
}

// verifyChain verifies cert up to roots through chain, or, without roots, up to the last
// element of chain (which need not be self-signed: the delivered chain is what is checked).
func verifyChain(cert *x509.Certificate, chain []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	if roots == nil {
		roots = x509.NewCertPool()
		roots.AddCert(chain[len(chain)-1])
		chain = chain[:len(chain)-1]
	}
	for _, c := range chain {
		inter.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// orderChain puts the chain in issuing order starting at leaf where it can; certificates it
// cannot place keep their order at the end.
func orderChain(leaf *x509.Certificate, chain []*x509.Certificate) []*x509.Certificate {
	rest := append([]*x509.Certificate(nil), chain...)
	var out []*x509.Certificate
	cur := leaf
	for len(rest) > 0 {
		next := -1
		for i, c := range rest {
			if bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		cur = rest[next]
		out = append(out, cur)
		rest = append(rest[:next], rest[next+1:]...)
	}
	return append(out, rest...)
}

func keyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey, ed25519.PrivateKey:
		return nil, fmt.Errorf("%T (RSA required)", k)
	case nil:
		return nil, ErrNoKey
	}
	return nil, fmt.Errorf("%T", key)
}

func readPEMCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &CredentialError{File: file, Problem: ErrNoCertificate, Err: err}
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &CredentialError{File: file, Problem: ErrNoCertificate, Err: err}
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, &CredentialError{File: file, Problem: ErrNoCertificate, Err: errors.New("no CERTIFICATE PEM block")}
	}
	return certs, nil
}

func parsePEMKey(data []byte) (key crypto.Signer, problem, cause error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, ErrNoKey, errors.New("no RSA PRIVATE KEY or PRIVATE KEY PEM block")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, encrypted := block.Headers["DEK-Info"]; encrypted {
				return nil, ErrUnsupportedKey, errors.New("encrypted PEM key (use PKCS#12 or an unencrypted key)")
			}
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, ErrNoKey, err
			}
			return k, nil, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, ErrNoKey, err
			}
			s, err := asSigner(k)
			if err != nil {
				return nil, ErrUnsupportedKey, err
			}
			return s, nil, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, ErrUnsupportedKey, errors.New("encrypted PKCS#8 key (use PKCS#12 or an unencrypted key)")
		}
	}
}
