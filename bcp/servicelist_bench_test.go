package bcp

import (
	"strings"
	"testing"
)

// BenchmarkParseServiceList parses the real acceptance list (23 services, 15 KB).
func BenchmarkParseServiceList(b *testing.B) {
	raw := readTestdata(b, sampleListPath)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseServiceList(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseServiceList_WorstCase parses a list at the element bound: the cost of
// the largest input ParseServiceList reads before refusing it.
func BenchmarkParseServiceList_WorstCase(b *testing.B) {
	raw := []byte(listDoc("", okService+strings.Repeat("<x a='1' b='2'/>", maxListElements-3)))
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseServiceList(raw); err != nil {
			b.Fatal(err)
		}
	}
}
