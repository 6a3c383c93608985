package connector

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/sts"
)

// Config.STSDialect selects the WS-Trust STS: the token comes from it and the live call works.
func TestClient_WSTrustDialect(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.STSDialect = sts.DialectWSTrust })
	wsBefore := env.p.Count("", platformtest.ServiceSTSWSTrust, platformtest.OutcomeOK)
	samlBefore := env.p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK)
	pt := patients(env.p, 1)[0]
	res, err := env.c.Insurability(context.Background(), InsurabilityRequest{SSIN: pt.SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceLive, res.Source)
	require.Greater(t, env.p.Count("", platformtest.ServiceSTSWSTrust, platformtest.OutcomeOK), wsBefore)
	require.Equal(t, samlBefore, env.p.Count("", platformtest.ServiceSTS, platformtest.OutcomeOK), "no SAML-P request")
}

func TestConfig_PresetsAndDialect(t *testing.T) {
	for p := PresetPharmacy; p <= PresetGroupOfNurses; p++ {
		a, ok := p.Attributes()
		require.True(t, ok, p.String())
		require.NotEmpty(t, a.Certified, p.String())
	}
	a, _ := PresetPharmacy.Attributes()
	require.Len(t, a.Certified, 7)
	a.Certified[0].Name = "changed"
	b, _ := PresetPharmacy.Attributes()
	require.NotEqual(t, "changed", b.Certified[0].Name, "a copy")
	_, ok := Preset(99).Attributes()
	require.False(t, ok)

	p, id := testPlatform(t)
	cfg := testConfig(t, p, id)
	cfg.STSDialect = sts.Dialect(7)
	var ce *ConfigError
	require.ErrorAs(t, cfg.Validate(), &ce)
	require.Equal(t, "STSDialect", ce.Field)
	cfg = testConfig(t, p, id)
	cfg.Identity.Preset = Preset(99)
	require.ErrorAs(t, cfg.Validate(), &ce)
	require.Equal(t, "Identity.Preset", ce.Field)
}
