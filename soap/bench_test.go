package soap_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ehgate/ehgate/soap"
)

// BenchmarkSignRequest signs a ~2 KB insurability request with a 2048-bit
// key; compare with BenchmarkRSASignBaseline, the bare RSA operation.
func BenchmarkSignRequest(b *testing.B) {
	p, _ := testPKIs(b)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	msg, err := s.Sign(soap.NewEnvelope(insurabilityRequest()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(soap.NewEnvelope(insurabilityRequest())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSASignBaseline is one rsa.SignPKCS1v15 of a SHA-256 digest with the same key.
func BenchmarkRSASignBaseline(b *testing.B) {
	p, _ := testPKIs(b)
	sum := sha256.Sum256([]byte("signed info"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRequest verifies the signed request (parse, references,
// digests, signature, trust, timestamp); compare with BenchmarkRSAVerifyBaseline.
func BenchmarkVerifyRequest(b *testing.B) {
	p, _ := testPKIs(b)
	msg := signedRequest(b, p)
	v := newVerifier(b, p, testNow)
	if _, err := v.Verify(msg); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRSAVerifyBaseline is one rsa.VerifyPKCS1v15 with the same key.
func BenchmarkRSAVerifyBaseline(b *testing.B) {
	p, _ := testPKIs(b)
	sum := sha256.Sum256([]byte("signed info"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&p.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignVsRSA alternates one Sign and one bare RSA signature and
// reports their ratio: on a shared machine the pair sees the same load, so
// the ratio is steadier than two separate benchmarks.
func BenchmarkSignVsRSA(b *testing.B) {
	p, _ := testPKIs(b)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("signed info"))
	var full, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.Sign(soap.NewEnvelope(insurabilityRequest())); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
		full += t1.Sub(t0)
		bare += time.Since(t1)
	}
	b.ReportMetric(float64(full)/float64(bare), "sign/rsa")
}

// BenchmarkVerifyVsRSA is BenchmarkSignVsRSA for verification.
func BenchmarkVerifyVsRSA(b *testing.B) {
	p, _ := testPKIs(b)
	msg := signedRequest(b, p)
	v := newVerifier(b, p, testNow)
	sum := sha256.Sum256([]byte("signed info"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		b.Fatal(err)
	}
	var full, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := v.Verify(msg); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := rsa.VerifyPKCS1v15(&p.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		full += t1.Sub(t0)
		bare += time.Since(t1)
	}
	b.ReportMetric(float64(full)/float64(bare), "verify/rsa")
}
