package connector

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
)

func validConfig() Config {
	c := DefaultConfig()
	c.ServiceListRoots = x509.NewCertPool()
	c.STSRoots = x509.NewCertPool()
	c.Credentials = Credentials{PKCS12File: "/x.p12", Password: "secret"}
	c.Identity = Identity{NIHII: "12345678901", SSIN: "93051822361"}
	c.CacheDir = "/tmp/x"
	c.CacheKeys = [][]byte{make([]byte, 32)}
	return c
}

func TestConfig_ValidateNamesTheBadField(t *testing.T) {
	require.NoError(t, validConfig().Validate())
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"Environment", func(c *Config) { c.Environment = EnvironmentNone }},
		{"ServiceListURL", func(c *Config) { c.ServiceListURL = "http://plain" }},
		{"ServiceListRoots", func(c *Config) { c.ServiceListRoots = nil }},
		{"ServiceListSigner.Fingerprints[1]", func(c *Config) {
			c.ServiceListSigner.Fingerprints = []string{"0E:D2:C9:1B:C0:BA:87:D8:D5:84:5F:5C:F7:01:7C:46:47:87:68:4B:0C:25:A0:D0:14:FF:3E:3B:37:CC:22:9E", "0ed2"}
		}},
		{"STSRoots", func(c *Config) { c.STSRoots = nil }},
		{"Credentials", func(c *Config) { c.Credentials = Credentials{} }},
		{"Credentials.KeyFile", func(c *Config) { c.Credentials = Credentials{CertFile: "c.pem"} }},
		{"Identity.NIHII", func(c *Config) { c.Identity.NIHII = "" }},
		{"Identity.NIHII", func(c *Config) { c.Identity.NIHII = "12ab" }},
		{"Identity.SSIN", func(c *Config) { c.Identity.SSIN = "93051822362" }},
		{"Identity.Preset", func(c *Config) { c.Identity.Preset = 99 }},
		{"CacheDir", func(c *Config) { c.CacheDir = "" }},
		{"CacheKeys", func(c *Config) { c.CacheKeys = nil }},
		{"CacheKeys[1]", func(c *Config) { c.CacheKeys = append(c.CacheKeys, []byte("short")) }},
		{"Timeouts.Attempt", func(c *Config) { c.Timeouts.Attempt = -time.Second }},
		{"StatusFeedURL", func(c *Config) { c.StatusFeedURL = "ftp://x" }},
		{"StatusComponents", func(c *Config) { c.StatusComponents = map[string][]string{"x": nil} }},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			c := validConfig()
			tc.mutate(&c)
			err := c.Validate()
			require.ErrorIs(t, err, ErrConfig)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.field, ce.Field)
			require.NotContains(t, err.Error(), "secret")
			require.NotContains(t, err.Error(), "93051822362")
		})
	}
}

func TestConfig_Defaults(t *testing.T) {
	c := Config{Environment: Acceptance}.withDefaults()
	require.Equal(t, AcceptanceServiceListURL, c.ServiceListURL)
	require.Equal(t, 30*24*time.Hour, c.Policies.Insurability.MaxAge)
	require.Equal(t, 8*time.Hour, c.Policies.ETK.RefreshAfter)
	require.Equal(t, 5*time.Second, c.Policies.ETK.AttemptTimeout)
	require.Equal(t, 2*time.Second, c.Timeouts.Connect)
	require.Equal(t, "Acceptation", c.ServiceListEnvironment, "the list must be the acceptance one")
	c = Config{Environment: Production}.withDefaults()
	require.Equal(t, ProductionServiceListURL, c.ServiceListURL)
	require.Equal(t, "Production", c.ServiceListEnvironment)
	c = Config{Environment: Production, ServiceListURL: "https://proxy.example/servicelist"}.withDefaults()
	require.Empty(t, c.ServiceListEnvironment, "a test platform's list is not checked unless asked")
	c = Config{Environment: Production, ServiceListURL: "https://proxy.example/servicelist", ServiceListEnvironment: "Production"}.withDefaults()
	require.Equal(t, "Production", c.ServiceListEnvironment)
}

func TestConfig_DefaultTimeoutsReachTheEngine(t *testing.T) {
	c := Config{Environment: Production}.withDefaults()
	require.Equal(t, 5*time.Second, c.Timeouts.Attempt)
	require.Equal(t, 10*time.Second, c.Policies.Insurability.CallTimeout)
	p, id := testPlatform(t)
	cfg := testConfig(t, p, id)
	cfg.Policies.Insurability.AttemptTimeout = 1500 * time.Millisecond
	cl, err := New(cfg)
	require.NoError(t, err)
	defer cl.Close()
	require.Equal(t, 1500*time.Millisecond, cl.engineConfig.Services[ServiceInsurability].AttemptTimeout)
	require.Equal(t, 5*time.Second, cl.engineConfig.Services[ServiceEHealthBox].AttemptTimeout)
	require.True(t, cl.engineConfig.Services[ServiceInsurability].Idempotent)
	require.False(t, cl.engineConfig.Services[ServiceEHealthBox].Idempotent, "writes are not retried by the engine")
}

func TestConfig_PrintsNoSecret(t *testing.T) {
	p, id := testPlatform(t)
	cfg := testConfig(t, p, id)
	cfg.Package.Password = "licence-secret"
	cfg.Credentials.Password = "keystore-secret"
	key := string(cfg.CacheKeys[0])
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg)
		require.NotContains(t, out, "licence-secret", format)
		require.NotContains(t, out, "keystore-secret", format)
		require.NotContains(t, out, key, format)
		require.Contains(t, out, "[redacted]", format)
		out = fmt.Sprintf(format, cfg.Credentials)
		require.NotContains(t, out, "keystore-secret", format)
		// The holder's SSIN is personal data (review LOW 8).
		require.NotContains(t, fmt.Sprintf(format, cfg), cfg.Identity.SSIN, format)
		require.NotContains(t, fmt.Sprintf(format, cfg.Identity), cfg.Identity.SSIN, format)
		require.Contains(t, fmt.Sprintf(format, cfg.Identity), cfg.Identity.NIHII, format)
	}
	b, err := json.Marshal(cfg.Identity)
	require.NoError(t, err)
	require.NotContains(t, string(b), cfg.Identity.SSIN)
	require.Contains(t, string(b), "[redacted]")
	b, err = json.Marshal(cfg.Credentials)
	require.NoError(t, err)
	require.NotContains(t, string(b), "keystore-secret")
	require.NotContains(t, string(b), `"D"`, "no private key")
	require.Contains(t, string(b), "loaded")
	b, err = json.Marshal(cfg.Package)
	require.NoError(t, err)
	require.NotContains(t, string(b), "licence-secret")
}

// A client started with the service list unreachable and nothing stored routes by the list
// compiled into the vendor's program; without one it has nowhere to send a call.
func TestClient_BuiltinServiceListIsTheLastResort(t *testing.T) {
	p, _ := testPlatform(t)
	t.Cleanup(func() { p.Site(platformtest.ControlSite).Clear("") })
	p.Site(platformtest.ControlSite).Inject(platformtest.ServiceList, platformtest.Fault{Kind: platformtest.FaultRefuse})
	pt := patients(p, 1)[0]
	ctx := context.Background()

	without := newTestEnv(t)
	_, err := without.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.ErrorIs(t, err, ErrNotCached, "no list: no endpoint to call, nothing stored")

	with := newTestEnv(t, func(c *Config) { c.ServiceListBuiltin = p.ServiceList() })
	require.Equal(t, bcp.ListFromBuiltin, with.c.loader.Source())
	res, err := with.c.Insurability(ctx, InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source, "routed by the builtin list (token from its STS endpoint too)")
	require.NotEmpty(t, res.Endpoint)
	require.Equal(t, bcp.ListFromBuiltin, with.c.loader.Source(), "the network still gives no list")
}

func TestConfig_BuiltinServiceListMustParse(t *testing.T) {
	p, id := testPlatform(t)
	cfg := testConfig(t, p, id)
	cfg.ServiceListBuiltin = []byte("<not a list/>")
	var ce *ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	require.Equal(t, "ServiceListBuiltin", ce.Field)
	cfg.ServiceListBuiltin = p.ServiceList()
	require.NoError(t, cfg.Validate())
	require.Contains(t, fmt.Sprintf("%+v", cfg), "ServiceListBuiltin:[]", "not printed")
}
