package bcp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
)

func FuzzParseServiceList(f *testing.F) {
	f.Add(readTestdata(f, sampleListPath))
	f.Add(readTestdata(f, v2ListPath))
	f.Add([]byte(listDoc("", okService)))
	f.Add([]byte(`<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache Strategy="CACHE_FIRST"><Key Inline="true"><x/></Key><Expiry Type="ttl" Duration="P1DT2H"/></Cache></Service></ServiceList>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseServiceList(data)
		if err != nil {
			if l != nil {
				t.Fatal("list and error")
			}
			var le *ListError
			if !errors.Is(err, ErrInvalidList) || !errors.As(err, &le) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		sum := sha256.Sum256(data)
		if l.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatal("SHA256 does not match the input")
		}
		if len(l.Services) == 0 || l.Version < 1 || l.Version > 2 || l.IssueInstant.IsZero() {
			t.Fatalf("accepted an incomplete list: %+v", l)
		}
		for _, s := range l.Services {
			got, ok := l.Lookup(s.ID)
			if !ok || got.ID != s.ID {
				t.Fatalf("service %q not found by its key", s.ID)
			}
			if len(s.Endpoints) == 0 || len(s.Endpoints) > maxServiceEndpoints {
				t.Fatalf("service %q has %d endpoints", s.ID, len(s.Endpoints))
			}
			for i, ep := range s.Endpoints {
				if ep.Service != s.ID {
					t.Fatalf("endpoint of %q names %q", s.ID, ep.Service)
				}
				if i > 0 && s.Endpoints[i-1].Order >= ep.Order {
					t.Fatalf("service %q: endpoints not in strictly increasing Order", s.ID)
				}
				if ep.Status != StatusActive && ep.Status != StatusInactive {
					t.Fatalf("bad status %d", ep.Status)
				}
				u, err := url.Parse(ep.URL)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					t.Fatalf("accepted endpoint URL %q", ep.URL)
				}
			}
			if s.Cache != nil && s.Cache.TTL < 0 {
				t.Fatalf("negative TTL")
			}
		}
	})
}

func FuzzParseXSDuration(f *testing.F) {
	for _, s := range []string{"P30D", "PT8H", "P1Y2M3DT4H5M6.5S", "-P1D", "PT", "P"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseXSDuration(s)
		if err != nil {
			return
		}
		if len(s) == 0 || (s[0] != 'P' && s[0] != '-') {
			t.Fatalf("accepted %q", s)
		}
		if s[0] == 'P' && d < 0 {
			t.Fatalf("%q → negative %v", s, d)
		}
	})
}
