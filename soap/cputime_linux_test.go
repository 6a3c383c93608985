//go:build linux

package soap_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ehgate/ehgate/soap"
)

// threadCPU returns the CPU time the calling OS thread has consumed. Unlike
// wall time it does not grow while other processes hold the cores, so the
// ratios below stay meaningful on a busy machine. (It leaves out the GC's
// background workers, which run on other threads: allocations are reported
// separately.)
func threadCPU() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// BenchmarkSignVsRSACPU is BenchmarkSignVsRSA in thread CPU time.
func BenchmarkSignVsRSACPU(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, _ := testPKIs(b)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("signed info"))
	var full, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := threadCPU()
		if _, err := s.Sign(soap.NewEnvelope(insurabilityRequest())); err != nil {
			b.Fatal(err)
		}
		t1 := threadCPU()
		if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
		full += t1 - t0
		bare += threadCPU() - t1
	}
	b.ReportMetric(float64(full)/float64(b.N), "sign-cpu-ns/op")
	b.ReportMetric(float64(bare)/float64(b.N), "rsa-cpu-ns/op")
	b.ReportMetric(float64(full)/float64(bare), "sign/rsa")
}

// BenchmarkAppendSignedVsRSACPU is BenchmarkAppendSignedVsRSA in thread CPU time.
func BenchmarkAppendSignedVsRSACPU(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, _ := testPKIs(b)
	s, err := soap.NewSigner(soap.SignerConfig{Key: p.key, Certificate: p.cert, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	payload, err := soap.Canonical(insurabilityRequest())
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 16<<10)
	sum := sha256.Sum256([]byte("signed info"))
	var full, bare time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := threadCPU()
		if _, err := s.AppendSigned(dst[:0], payload); err != nil {
			b.Fatal(err)
		}
		t1 := threadCPU()
		if _, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
		full += t1 - t0
		bare += threadCPU() - t1
	}
	b.ReportMetric(float64(full)/float64(b.N), "sign-cpu-ns/op")
	b.ReportMetric(float64(bare)/float64(b.N), "rsa-cpu-ns/op")
	b.ReportMetric(float64(full)/float64(bare), "sign/rsa")
}

// BenchmarkVerifyVsRSACPU is BenchmarkVerifyVsRSA in thread CPU time.
func BenchmarkVerifyVsRSACPU(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
		t0 := threadCPU()
		if _, err := v.Verify(msg); err != nil {
			b.Fatal(err)
		}
		t1 := threadCPU()
		if err := rsa.VerifyPKCS1v15(&p.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
		full += t1 - t0
		bare += threadCPU() - t1
	}
	b.ReportMetric(float64(full)/float64(b.N), "verify-cpu-ns/op")
	b.ReportMetric(float64(bare)/float64(b.N), "rsa-cpu-ns/op")
	b.ReportMetric(float64(full)/float64(bare), "verify/rsa")
}
