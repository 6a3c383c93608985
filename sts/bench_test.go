package sts

import (
	"context"
	"testing"
	"time"
)

// BenchmarkTokenCached measures Token while a valid token is held, on the system clock: the
// path every business call takes.
func BenchmarkTokenCached(b *testing.B) {
	h := newHarnessWith(b, 5*time.Hour, nil)
	p := h.start(b)
	ctx := context.Background()
	first, err := p.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tok, err := p.Token(ctx)
		if err != nil || tok != first {
			b.Fatal("token changed or failed", err)
		}
	}
}

// BenchmarkTokenCachedParallel is BenchmarkTokenCached from every core at once.
func BenchmarkTokenCachedParallel(b *testing.B) {
	h := newHarnessWith(b, 5*time.Hour, nil)
	p := h.start(b)
	ctx := context.Background()
	if _, err := p.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Token(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSignerCached measures Signer while a valid token is held.
func BenchmarkSignerCached(b *testing.B) {
	h := newHarnessWith(b, 5*time.Hour, nil)
	p := h.start(b)
	ctx := context.Background()
	if _, err := p.Signer(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Signer(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenew measures one full token request against the loopback test STS: build and sign
// the request, the STS's verification and signature, the response's validation. Both sides run
// in this process, so it is an upper bound of the client's share.
func BenchmarkRenew(b *testing.B) {
	h := newHarnessWith(b, 5*time.Hour, nil)
	p := h.start(b)
	ctx := context.Background()
	if _, err := p.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Renew(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
