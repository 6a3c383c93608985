package connector

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// ErrCertFile is the sentinel of a CA file CertPoolFromPEMFiles cannot use.
var ErrCertFile = errors.New("connector: unusable CA file")

// MaxCertFileSize bounds one file read by CertPoolFromPEMFiles: a bundle of CAs is a few
// dozen KiB; anything much larger is not one.
const MaxCertFileSize = 4 << 20

// CertFileError says which file (and which PEM block of it, counted from 1; 0 = the file as a
// whole) CertPoolFromPEMFiles could not use, and why.
type CertFileError struct {
	File   string
	Block  int
	Reason string
	Err    error // the underlying error (reading the file, parsing the certificate), or nil
}

// Error names the file, the block and what was wrong.
func (e *CertFileError) Error() string {
	where := e.File
	if e.Block > 0 {
		where += ": PEM block " + strconv.Itoa(e.Block)
	}
	msg := "connector: CA file " + where + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *CertFileError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCertFile.
func (e *CertFileError) Is(target error) bool { return target == ErrCertFile }

// CertPoolFromPEMFiles builds a certificate pool from PEM files, for Config.TLSRoots,
// Config.STSRoots and Config.ServiceListRoots: give it the CA files the platform publishes
// (one file may hold several certificates). Every block of every file must be a
// "CERTIFICATE" that parses, and every file must hold at least one; otherwise it returns a
// *CertFileError (errors.Is(err, ErrCertFile)) naming the file and the block, and no pool.
// Text outside the blocks (as openssl writes before them) is ignored.
//
// Validity dates are not checked: a root is a trust anchor, and Go's verification checks
// the dates of every certificate of the chain it builds at each use, so an expired CA in the
// pool never makes an expired chain valid, while refusing the file would stop a client
// whose bundle still holds an old CA beside the current one. Neither is the CA flag: the
// platform's signer certificate itself may be pinned as a root.
//
// It reads the files once and keeps nothing open; it is safe for concurrent use.
func CertPoolFromPEMFiles(files ...string) (*x509.CertPool, error) {
	if len(files) == 0 {
		return nil, &CertFileError{Reason: "no file given"}
	}
	pool := x509.NewCertPool()
	for _, name := range files {
		certs, err := readPEMCertificates(name)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// readPEMCertificates returns every certificate of the PEM file name.
func readPEMCertificates(name string) ([]*x509.Certificate, error) {
	bad := func(block int, reason string, err error) error {
		return &CertFileError{File: name, Block: block, Reason: reason, Err: err}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, bad(0, "cannot open", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCertFileSize+1))
	if err != nil {
		return nil, bad(0, "cannot read", err)
	}
	if len(data) > MaxCertFileSize {
		return nil, bad(0, fmt.Sprintf("larger than %d bytes: not a CA file", MaxCertFileSize), nil)
	}
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, bad(n, fmt.Sprintf("a %q block, not a certificate", block.Type), nil)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, bad(n, "not a valid certificate", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		reason := "no PEM block"
		if _, err := x509.ParseCertificate(data); err == nil {
			reason += " (a DER certificate: convert it with openssl x509 -inform der -in file.cer -out file.pem)"
		} else if bytes.Contains(data, []byte("-----BEGIN")) {
			reason += " (a BEGIN line without a well-formed block)"
		}
		return nil, bad(0, reason, nil)
	}
	return certs, nil
}
