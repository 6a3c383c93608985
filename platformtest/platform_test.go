package platformtest_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/ehgate/ehgate/platformtest"
)

func TestPatients_AreDeterministicWithValidSSINs(t *testing.T) {
	population := func(seed int64) []platformtest.Patient {
		p := start(t, platformtest.Config{Seed: seed, Patients: 300})
		defer p.Close() // one platform at a time: the next reuses its keys
		return p.Patients()
	}
	require.Equal(t, population(42), population(42))
	require.NotEqual(t, population(42), population(43))
	a := start(t, platformtest.Config{Seed: 42, Patients: 300})

	counts := map[string]int{}
	seen := map[string]bool{}
	for _, pt := range a.Patients() {
		require.False(t, seen[pt.SSIN], "unique SSINs")
		seen[pt.SSIN] = true
		from2000 := pt.Birthday.Year() >= 2000
		require.True(t, ssinCheckOK(pt.SSIN, from2000), "check digits of a person born in %d", pt.Birthday.Year())
		require.Equal(t, pt.Birthday.Format("060102"), pt.SSIN[:6])
		if from2000 {
			counts["from2000"]++
		}
		switch {
		case !pt.Known:
			counts["unknown"]++
			_, ok := a.Patient(pt.SSIN)
			require.False(t, ok)
		case !pt.Insured:
			counts["lapsed"]++
			require.False(t, pt.CoveredOn(time.Now()))
		default:
			require.True(t, pt.CoveredOn(time.Now()))
			counts[string(pt.Regime)]++
		}
	}
	for _, k := range []string{"from2000", "unknown", "lapsed", "none", "standard", "elevated"} {
		require.Positive(t, counts[k], k)
	}
}

func TestIdentity_ExportsPKCS12AndPEM(t *testing.T) {
	p := start(t, platformtest.Config{})
	id, err := p.NewIdentity(platformtest.Pharmacy, "Apotheek Export")
	require.NoError(t, err)
	require.Len(t, id.NIHII, 8)
	require.Len(t, id.NIHII11, 11)
	require.True(t, ssinCheckOK(id.SSIN, false) || ssinCheckOK(id.SSIN, true))

	p12, err := id.PKCS12("secret")
	require.NoError(t, err)
	key, cert, cas, err := pkcs12.DecodeChain(p12, "secret")
	require.NoError(t, err)
	require.True(t, cert.Equal(id.Certificate))
	rk, ok := key.(*rsa.PrivateKey)
	require.True(t, ok)
	require.True(t, rk.Equal(id.Key))
	require.Len(t, cas, 1)
	_, err = cert.Verify(x509.VerifyOptions{Roots: p.ProviderCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)

	certPEM, keyPEM := id.PEM()
	blk, rest := pem.Decode(certPEM)
	require.Equal(t, id.Certificate.Raw, blk.Bytes)
	require.NotEmpty(t, rest, "the CA follows")
	blk, _ = pem.Decode(keyPEM)
	require.Equal(t, "PRIVATE KEY", blk.Type)

	_, err = p.NewIdentity(platformtest.IdentityKind(9), "x")
	require.Error(t, err)
}

func TestStatusFeed_ServesComponentsAndChanges(t *testing.T) {
	p := start(t, platformtest.Config{})
	read := func() []platformtest.Component {
		resp, err := p.HTTPClient().Get(p.StatusFeedURL())
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var v struct{ Data []platformtest.Component }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return v.Data
	}
	comps := read()
	names := []string{}
	for _, c := range comps {
		names = append(names, c.NameNL)
		require.Equal(t, platformtest.StatusOperational, c.StatusName)
	}
	require.Subset(t, names, []string{"Insurability", "eHealth STS", "ETK Depot", "eHealthBox", "Generic Insurability"})

	p.SetComponentStatus("insurability", platformtest.StatusMajorOutage)
	for _, c := range read() {
		if c.NameNL == "Insurability" {
			require.Equal(t, platformtest.StatusMajorOutage, c.StatusName)
		}
	}

	p.SetStatusFeedBareArray(true)
	resp, err := p.HTTPClient().Get(p.StatusFeedURL())
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	var arr []platformtest.Component
	require.NoError(t, json.Unmarshal(b, &arr))
	require.Len(t, arr, len(comps))
}

func TestPlay_RunsStepsInOrderAndStopsWithTheContext(t *testing.T) {
	p := start(t, platformtest.Config{})
	var order []string
	step := func(name string, at time.Duration, do func(*platformtest.Platform)) platformtest.Step {
		return platformtest.Step{At: at, Name: name, Do: func(p *platformtest.Platform) { order = append(order, name); do(p) }}
	}
	err := p.Play(context.Background(), platformtest.Scenario{Steps: []platformtest.Step{
		step("recover", 2*time.Millisecond, func(p *platformtest.Platform) { p.Site("ehealth").Clear("") }),
		step("outage", 0, func(p *platformtest.Platform) {
			p.Site("ehealth").Inject("insurability", platformtest.Fault{Kind: platformtest.FaultSOAP})
		}),
		step("list", time.Millisecond, func(p *platformtest.Platform) { p.SetEndpointStatus("insurability", "ehealth", false) }),
	}})
	require.NoError(t, err)
	require.Equal(t, []string{"outage", "list", "recover"}, order)
	require.Equal(t, platformtest.FaultNone, p.Site("ehealth").Fault("insurability").Kind)

	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- p.Play(ctx, platformtest.Scenario{Steps: []platformtest.Step{{At: time.Hour, Do: func(*platformtest.Platform) { ran = true }}}})
	}()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.False(t, ran)
}

func TestPlay_AndDelaysRunOnThePlatformTimer(t *testing.T) {
	var mu sync.Mutex
	var asked []time.Duration
	fired := func(d time.Duration) <-chan time.Time { // a test timer that fires at once
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	p := start(t, platformtest.Config{After: fired})
	var order []string
	require.NoError(t, p.Play(context.Background(), platformtest.Scenario{Steps: []platformtest.Step{
		{At: 3 * time.Hour, Do: func(*platformtest.Platform) { order = append(order, "3h") }},
		{At: time.Hour, Do: func(*platformtest.Platform) { order = append(order, "1h") }},
		{At: time.Hour, Do: func(*platformtest.Platform) { order = append(order, "1h bis") }},
	}}))
	require.Equal(t, []string{"1h", "1h bis", "3h"}, order)
	require.Equal(t, []time.Duration{time.Hour, 2 * time.Hour}, asked)

	p.Site("ehealth").Inject("etk", platformtest.Fault{Kind: platformtest.FaultDelay, Delay: time.Hour})
	resp, err := send(plainClient(t, p, 5*time.Second), p.URL("etk", "ehealth"), etkMessage(t))
	require.NoError(t, err, "an hour on the platform timer")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	mu.Lock()
	require.Equal(t, time.Hour, asked[len(asked)-1])
	mu.Unlock()
}

func TestOutageScenario_GoesDownAndComesBack(t *testing.T) {
	p := start(t, platformtest.Config{})
	sc := platformtest.OutageScenario(time.Millisecond)
	shas := map[string]bool{p.ServiceListSHA256(): true}
	var seen []platformtest.FaultKind
	for i := range sc.Steps {
		do := sc.Steps[i].Do
		sc.Steps[i].Do = func(p *platformtest.Platform) {
			do(p)
			seen = append(seen, p.Site("mycarenet").Fault(platformtest.ServiceInsurability).Kind)
			shas[p.ServiceListSHA256()] = true
		}
	}
	require.NoError(t, p.Play(context.Background(), sc))
	require.Equal(t, []platformtest.FaultKind{platformtest.FaultNone, platformtest.FaultNone, platformtest.FaultRefuse, platformtest.FaultNone}, seen)
	require.Len(t, shas, 3, "the list was re-signed twice")
	for _, c := range p.StatusFeed() {
		require.Equal(t, platformtest.StatusOperational, c.StatusName)
	}
	_, root := fetchList(t, p)
	require.Equal(t, "0 ACTIVE", endpoints(root, platformtest.ServiceInsurability)[p.URL("insurability", "ehealth")])
}

func TestConfig_ValidateNamesTheBadField(t *testing.T) {
	for _, tt := range []struct {
		cfg   platformtest.Config
		field string
	}{
		{platformtest.Config{ListVersion: 3}, "ListVersion"},
		{platformtest.Config{Patients: -1}, "Patients"},
		{platformtest.Config{Sites: []platformtest.SiteConfig{{Name: "a"}, {Name: "a"}}}, "Sites[1].Name"},
		{platformtest.Config{Sites: []platformtest.SiteConfig{{Name: "control"}}}, "Sites[0].Name"},
		{platformtest.Config{Sites: []platformtest.SiteConfig{{Name: "a", Addr: "192.0.2.1:8443"}}}, "Sites[0].Addr"},
		{platformtest.Config{Sites: []platformtest.SiteConfig{{Name: "a", Addr: "127.0.0.1"}}}, "Sites[0].Addr"},
		{platformtest.Config{ControlAddr: "localhost:8443"}, "ControlAddr"},
		{platformtest.Config{ControlAddr: "127.0.0.1:99999"}, "ControlAddr"},
	} {
		_, err := platformtest.Start(tt.cfg)
		require.ErrorContains(t, err, tt.field)
	}
}

func TestSites_ThreeSitesAreListedInOrder(t *testing.T) {
	p := start(t, platformtest.Config{Sites: []platformtest.SiteConfig{{Name: "a"}, {Name: "b"}, {Name: "c"}}})
	_, root := fetchList(t, p)
	eps := endpoints(root, "genericinsurability:v1")
	require.Len(t, eps, 3)
	for i, s := range []string{"a", "b", "c"} {
		want := "INACTIVE" // the BCP endpoints, until the platform moves the service
		if i == 0 {
			want = "ACTIVE"
		}
		require.Equal(t, fmt.Sprintf("%d %s", i, want), eps[p.URL("genericinsurability", s)])
	}
	require.True(t, slices.Equal([]string{"a", "b", "c"}, []string{p.Sites()[0].Name(), p.Sites()[1].Name(), p.Sites()[2].Name()}))
	resp, err := p.HTTPClient().Get(p.Site("c").URL() + "/nowhere")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
