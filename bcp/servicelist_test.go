package bcp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	sampleListPath = "testdata/servicelist-acceptance-2022-12.xml"
	v2ListPath     = "testdata/servicelist-v2.xml"
	insurabilityV2 = "uddi:ehealth-fgov-be:business:insurability:v2"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestParseServiceList_RealAcceptanceSample(t *testing.T) {
	raw := readTestdata(t, sampleListPath)
	l, err := ParseServiceList(raw)
	require.NoError(t, err)

	require.Equal(t, 1, l.Version)
	require.Equal(t, "_4b391e36-7f21-4518-94ca-5dbea127bd36", l.ID)
	require.Equal(t, "Acceptation", l.Environment)
	require.True(t, l.IssueInstant.Equal(time.Date(2022, 12, 20, 6, 17, 39, 67_000_000, time.UTC)), l.IssueInstant)
	require.Len(t, l.Services, 23)
	sum := sha256.Sum256(raw)
	require.Equal(t, hex.EncodeToString(sum[:]), l.SHA256)
	require.Equal(t, raw, l.Raw)

	byShort, ok := l.Lookup("insurability:v2")
	require.True(t, ok)
	byKey, ok := l.Lookup(insurabilityV2)
	require.True(t, ok)
	require.Equal(t, byKey, byShort)
	require.Equal(t, "INSURABILITY V2", byKey.Name)
	require.Nil(t, byKey.Cache)
	require.Equal(t, []Endpoint{
		{Service: insurabilityV2, URL: "https://services-acpt.ehealth.fgov.be/Insurability/v2", Order: 0, Status: StatusActive},
		{Service: insurabilityV2, URL: "https://pilot.mycarenet.be:9443/ehealth/bcp/insurability", Order: 1, Status: StatusInactive},
	}, byKey.Endpoints)

	sts, ok := l.Lookup("iamsaml11tokenservice:v1")
	require.True(t, ok)
	require.Len(t, sts.Endpoints, 1)
	require.Equal(t, "https://services-acpt.ehealth.fgov.be/IAM/Saml11TokenService/v1", sts.Endpoints[0].URL)

	_, ok = l.Lookup("business:insurability:v2")
	require.False(t, ok)
	_, ok = l.Lookup("INSURABILITY V2")
	require.False(t, ok, "display names are not lookup keys")
}

func TestParseServiceList_V2WithCacheHints(t *testing.T) {
	l, err := ParseServiceList(readTestdata(t, v2ListPath))
	require.NoError(t, err)
	require.Equal(t, 2, l.Version)
	require.Equal(t, "Production", l.Environment)
	require.True(t, l.IssueInstant.Equal(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)))

	ins, ok := l.Lookup("insurability:v2")
	require.True(t, ok)
	// Sorted by Order although the document lists Order 1 first.
	require.Equal(t, 0, ins.Endpoints[0].Order)
	require.Equal(t, StatusInactive, ins.Endpoints[0].Status)
	require.Equal(t, "https://prod.mycarenet.be:9443/ehealth/bcp/insurability", ins.Endpoints[1].URL)
	require.Equal(t, StatusActive, ins.Endpoints[1].Status)
	require.NotNil(t, ins.Cache)
	require.Equal(t, CacheCacheFirst, ins.Cache.Strategy)
	require.Equal(t, 8*time.Hour, ins.Cache.TTL)
	require.True(t, ins.Cache.KeyInline)
	require.True(t, strings.HasPrefix(ins.Cache.Key, "<xsl:stylesheet"), ins.Cache.Key)
	require.True(t, strings.HasSuffix(ins.Cache.Key, "</xsl:stylesheet>"), ins.Cache.Key)

	gen, ok := l.Lookup("genericinsurability:v1")
	require.True(t, ok)
	require.Equal(t, &CacheHint{Strategy: CacheEndpointFirst, Key: "https://servicelist.ehealth.fgov.be/keys/genericinsurability.xslt", TTL: 30 * 24 * time.Hour}, gen.Cache)

	etk, ok := l.Lookup("etkdepot:v1")
	require.True(t, ok)
	require.Equal(t, &CacheHint{Strategy: CacheEndpointFirst}, etk.Cache)

	sts, ok := l.Lookup("iamsaml11tokenservice:v1")
	require.True(t, ok)
	require.Nil(t, sts.Cache)
}

// listDoc builds a v1 list around the given services markup.
func listDoc(rootAttrs, services string) string {
	if rootAttrs == "" {
		rootAttrs = `Id="_l" IssueInstant="2026-01-02T03:04:05Z" Environment="Test"`
	}
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v1" ` + rootAttrs + `>` + services + `</ServiceList>`
}

const okService = `<Service Id="uddi:x:business:a:v1" Name="A"><Endpoint Order="0" Status="ACTIVE">https://a.example/v1</Endpoint></Service>`

func TestParseServiceList_RejectsWithTypedErrors(t *testing.T) {
	svc := func(endpoints string) string {
		return `<Service Id="uddi:x:business:a:v1" Name="A">` + endpoints + `</Service>`
	}
	tests := []struct {
		name     string
		doc      string
		sentinel error  // besides ErrInvalidList
		service  string // expected ListError.Service
		field    string // expected ListError.Field
	}{
		{"empty input", ``, ErrListMalformed, "", ""},
		{"not xml", `hello`, ErrListMalformed, "", ""},
		{"truncated", listDoc("", okService)[:120], ErrListMalformed, "", ""},
		{"wrong root namespace", `<ServiceList xmlns="urn:other" IssueInstant="2026-01-02T03:04:05Z">` + okService + `</ServiceList>`, ErrListMalformed, "", "{urn:other}ServiceList"},
		{"wrong root element", `<Services xmlns="urn:be:fgov:ehealth:bcp:protocol:v1"/>`, ErrListMalformed, "", "Services"},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + listDoc("", okService)[len(`<?xml version="1.0" encoding="UTF-8"?>`)+1:], ErrListDoctype, "", ""},
		{"undefined entity", listDoc("", `<Service Id="&a;"/>`), ErrListMalformed, "", ""},
		{"trailing element", listDoc("", okService) + `<x/>`, ErrListMalformed, "", "x"},
		{"missing IssueInstant", listDoc(`Id="_l"`, okService), nil, "", "@IssueInstant"},
		{"bad IssueInstant", listDoc(`IssueInstant="yesterday"`, okService), nil, "", "@IssueInstant"},
		{"no service", listDoc("", ``), nil, "", "Service"},
		{"missing service Id", listDoc("", `<Service Name="A"><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></Service>`), nil, "Service[1]", "@Id"},
		{"empty service Id", listDoc("", `<Service Id=" " Name="A"><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></Service>`), nil, "Service[1]", "@Id"},
		{"no endpoints", listDoc("", svc(``)), nil, "uddi:x:business:a:v1", "Endpoint"},
		{"missing Order", listDoc("", svc(`<Endpoint Status="ACTIVE">https://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]/@Order"},
		{"bad Order", listDoc("", svc(`<Endpoint Order="first" Status="ACTIVE">https://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]/@Order"},
		{"negative Order", listDoc("", svc(`<Endpoint Order="-1" Status="ACTIVE">https://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]/@Order"},
		{"duplicate Order", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint><Endpoint Order="0" Status="INACTIVE">https://b.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[2]/@Order"},
		{"missing Status", listDoc("", svc(`<Endpoint Order="0">https://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]/@Status"},
		{"bad Status", listDoc("", svc(`<Endpoint Order="0" Status="active">https://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]/@Status"},
		{"empty URL", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE"> </Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]"},
		{"http URL", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE">http://a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]"},
		{"relative URL", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE">/Insurability/v2</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]"},
		{"URL with user", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE">https://u:p@a.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]"},
		{"element inside URL", listDoc("", svc(`<Endpoint Order="0" Status="ACTIVE">https://a<b/>.example/</Endpoint>`)), nil, "uddi:x:business:a:v1", "Endpoint[1]"},
		{"duplicate service", listDoc("", okService+okService), nil, "uddi:x:business:a:v1", "@Id"},
		{"bad cache strategy", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache Strategy="SOMETIMES"/></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache/@Strategy"},
		{"bad expiry type", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache Strategy="CACHE_FIRST"><Expiry Type="forever"/></Cache></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache/Expiry/@Type"},
		{"bad expiry duration", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache Strategy="CACHE_FIRST"><Expiry Type="ttl" Duration="30 days"/></Cache></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache/Expiry/@Duration"},
		{"negative expiry duration", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache Strategy="CACHE_FIRST"><Expiry Type="ttl" Duration="-P1D"/></Cache></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache/Expiry/@Duration"},
		{"ttl without duration", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache><Expiry Type="ttl"/></Cache></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache/Expiry/@Duration"},
		{"two cache elements", `<ServiceList xmlns="urn:be:fgov:ehealth:bcp:protocol:v2" IssueInstant="2026-01-02T03:04:05Z"><Service Id="uddi:x:business:a:v1"><EndpointList><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></EndpointList><Cache/><Cache/></Service></ServiceList>`, nil, "uddi:x:business:a:v1", "Cache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseServiceList([]byte(tc.doc))
			require.Error(t, err)
			require.Nil(t, l)
			require.ErrorIs(t, err, ErrInvalidList)
			if tc.sentinel != nil {
				require.ErrorIs(t, err, tc.sentinel)
			}
			var le *ListError
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.service, le.Service, "service in %v", err)
			require.Equal(t, tc.field, le.Field, "field in %v", err)
			if tc.service != "" {
				require.Contains(t, err.Error(), tc.service)
			}
		})
	}
}

func TestParseServiceList_Bounds(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		big := listDoc("", okService+"<!--"+strings.Repeat("x", MaxServiceListBytes)+"-->")
		_, err := ParseServiceList([]byte(big))
		require.ErrorIs(t, err, ErrListTooLarge)
	})
	t.Run("depth", func(t *testing.T) {
		deep := strings.Repeat("<x>", 100) + strings.Repeat("</x>", 100)
		_, err := ParseServiceList([]byte(listDoc("", okService+deep)))
		require.ErrorIs(t, err, ErrListTooLarge)
	})
	t.Run("elements", func(t *testing.T) {
		many := strings.Repeat("<x/>", maxListElements+1)
		_, err := ParseServiceList([]byte(listDoc("", okService+many)))
		require.ErrorIs(t, err, ErrListTooLarge)
	})
	t.Run("endpoints per service", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i <= maxServiceEndpoints; i++ {
			fmt.Fprintf(&b, `<Endpoint Order="%d" Status="ACTIVE">https://a.example/%d</Endpoint>`, i, i)
		}
		_, err := ParseServiceList([]byte(listDoc("", `<Service Id="uddi:x:business:a:v1">`+b.String()+`</Service>`)))
		require.ErrorIs(t, err, ErrListTooLarge)
		var le *ListError
		require.ErrorAs(t, err, &le)
		require.Equal(t, "uddi:x:business:a:v1", le.Service)
	})
	t.Run("URL length", func(t *testing.T) {
		long := "https://a.example/" + strings.Repeat("p", maxListURLLength)
		_, err := ParseServiceList([]byte(listDoc("", `<Service Id="uddi:x:business:a:v1"><Endpoint Order="0" Status="ACTIVE">`+long+`</Endpoint></Service>`)))
		require.ErrorIs(t, err, ErrInvalidList)
	})
}

func TestParseServiceList_Tolerates(t *testing.T) {
	// Foreign elements (the signature, future extensions), comments, surrounding space,
	// an IssueInstant without offset, v1 with EndpointList and prefixes are accepted.
	doc := `<?xml version="1.0"?>
<!-- published -->
<p:ServiceList xmlns:p="urn:be:fgov:ehealth:bcp:protocol:v1" IssueInstant="2026-01-02T03:04:05">
  <p:Extension><p:Whatever/></p:Extension>
  <p:Service Id="uddi:x:business:a:v1">
    <p:EndpointList>
      <p:Endpoint Order="2" Status=" INACTIVE ">
        https://b.example/v1
      </p:Endpoint>
      <p:Endpoint Order="0" Status="ACTIVE">https://a.example/v1</p:Endpoint>
    </p:EndpointList>
    <other:Thing xmlns:other="urn:other"><p:Endpoint Order="9" Status="ACTIVE">https://ignored.example/</p:Endpoint></other:Thing>
  </p:Service>
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>
</p:ServiceList>
`
	l, err := ParseServiceList([]byte(doc))
	require.NoError(t, err)
	require.Equal(t, "", l.ID)
	require.True(t, l.IssueInstant.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
	s, ok := l.Lookup("a:v1")
	require.True(t, ok)
	require.Equal(t, []Endpoint{
		{Service: "uddi:x:business:a:v1", URL: "https://a.example/v1", Order: 0, Status: StatusActive},
		{Service: "uddi:x:business:a:v1", URL: "https://b.example/v1", Order: 2, Status: StatusInactive},
	}, s.Endpoints)
}

func TestServiceList_LookupAmbiguousShortName(t *testing.T) {
	doc := listDoc("",
		`<Service Id="uddi:org-a:business:vaccination:v2"><Endpoint Order="0" Status="ACTIVE">https://a.example/</Endpoint></Service>`+
			`<Service Id="uddi:org-b:business:vaccination:v2"><Endpoint Order="0" Status="ACTIVE">https://b.example/</Endpoint></Service>`)
	l, err := ParseServiceList([]byte(doc))
	require.NoError(t, err)
	_, ok := l.Lookup("vaccination:v2")
	require.False(t, ok, "ambiguous short name")
	s, ok := l.Lookup("uddi:org-b:business:vaccination:v2")
	require.True(t, ok)
	require.Equal(t, "https://b.example/", s.Endpoints[0].URL)

	// A list built by hand (no index) follows the same rules.
	hand := &ServiceList{Services: l.Services}
	_, ok = hand.Lookup("vaccination:v2")
	require.False(t, ok)
	s, ok = hand.Lookup("uddi:org-a:business:vaccination:v2")
	require.True(t, ok)
	require.Equal(t, "https://a.example/", s.Endpoints[0].URL)
	hand = &ServiceList{Services: l.Services[:1]}
	_, ok = hand.Lookup("vaccination:v2")
	require.True(t, ok)

	var nilList *ServiceList
	_, ok = nilList.Lookup("vaccination:v2")
	require.False(t, ok)
}

func TestEnumStrings(t *testing.T) {
	require.Equal(t, "ACTIVE", StatusActive.String())
	require.Equal(t, "INACTIVE", StatusInactive.String())
	require.Equal(t, "EndpointStatus(7)", EndpointStatus(7).String())
	require.Equal(t, "ENDPOINT_FIRST", CacheEndpointFirst.String())
	require.Equal(t, "CACHE_FIRST", CacheCacheFirst.String())
	require.Equal(t, "CacheStrategy(5)", CacheStrategy(5).String())
	require.Equal(t, "insurability:v2", ShortServiceName(insurabilityV2))
	require.Equal(t, "", ShortServiceName("insurability"))
}

func TestParseXSDuration(t *testing.T) {
	const day = 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"P30D", 30 * day},
		{"PT8H", 8 * time.Hour},
		{"PT0S", 0},
		{"P1Y", 365 * day},
		{"P2M", 60 * day},
		{"P1Y2M3DT4H5M6S", 365*day + 60*day + 3*day + 4*time.Hour + 5*time.Minute + 6*time.Second},
		{"PT1.5S", 1500 * time.Millisecond},
		{"PT0.000000001S", time.Nanosecond},
		{"PT1.0000000019S", time.Second + time.Nanosecond}, // beyond nanoseconds: truncated
		{"PT90M", 90 * time.Minute},
		{"P0D", 0},
		{"-P1D", -day},
		{"P1DT12H", 36 * time.Hour},
		{"P106751D", 106751 * day},
	}
	for _, tc := range good {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseXSDuration(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
		})
	}
	bad := []string{
		"", "P", "PT", "30D", "p30d", "P30d", "P1DT", "PT1D", "P1H", "P1S",
		"P1M1Y", "PT1S1M", "P1D1D", "PT1H1H", "P1.5D", "PT1.5H", "PT1.S", "PT.5S",
		"P-1D", "+P1D", "--P1D", "P 1D", "P1D ", " P1D", "P1DT1", "P1", "PT1",
		"P1DT1H2", "P99999999999999999999D", "P106752D", "P300Y", "PT9223372037S",
		"P1W", "PT1HZ",
	}
	for _, in := range bad {
		t.Run("bad/"+in, func(t *testing.T) {
			_, err := ParseXSDuration(in)
			require.Error(t, err)
			require.Contains(t, err.Error(), "xs:duration")
		})
	}
}

func TestParseServiceList_IssueInstantForms(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2022-12-20T07:17:39.067+01:00": time.Date(2022, 12, 20, 6, 17, 39, 67e6, time.UTC),
		"2022-12-20T07:17:39+01:00":     time.Date(2022, 12, 20, 6, 17, 39, 0, time.UTC),
		"2022-12-20T07:17:39Z":          time.Date(2022, 12, 20, 7, 17, 39, 0, time.UTC),
		"2022-12-20T07:17:39.5":         time.Date(2022, 12, 20, 7, 17, 39, 5e8, time.UTC),
		"2022-12-20T07:17:39":           time.Date(2022, 12, 20, 7, 17, 39, 0, time.UTC),
	} {
		l, err := ParseServiceList([]byte(listDoc(`IssueInstant="`+in+`"`, okService)))
		require.NoError(t, err, in)
		require.True(t, l.IssueInstant.Equal(want), "%s → %v", in, l.IssueInstant)
	}
}

func TestListError_Message(t *testing.T) {
	_, err := ParseServiceList([]byte(listDoc("", `<Service Id="uddi:x:business:a:v1"><Endpoint Order="x" Status="ACTIVE">https://a/</Endpoint></Service>`)))
	require.EqualError(t, err, `bcp: service list: service uddi:x:business:a:v1: Endpoint[1]/@Order "x": not an integer from 0 to 1000000`)
	require.False(t, errors.Is(err, ErrListMalformed))
}
