package sts

import (
	"context"
	"errors"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

func wstBody(t *testing.T, xml string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromString(xml))
	return doc.Root()
}

// A WS-Trust answer must answer our Context and hold a token or a challenge.
func TestReadWSTrust_Strict(t *testing.T) {
	const ns = `xmlns:wst="` + nsWST + `"`
	tests := []struct {
		name, xml string
		want      error
	}{
		{"context absent", `<wst:RequestSecurityTokenResponse ` + ns + `><wst:RequestedSecurityToken/></wst:RequestSecurityTokenResponse>`, ErrInResponseTo},
		{"context of another request", `<wst:RequestSecurityTokenResponse ` + ns + ` Context="urn:uuid:other"><wst:RequestedSecurityToken/></wst:RequestSecurityTokenResponse>`, ErrInResponseTo},
		{"two responses", `<wst:RequestSecurityTokenResponseCollection ` + ns + `><wst:RequestSecurityTokenResponse Context="urn:uuid:ours"/><wst:RequestSecurityTokenResponse Context="urn:uuid:ours"/></wst:RequestSecurityTokenResponseCollection>`, ErrMalformedResponse},
		{"neither token nor challenge", `<wst:RequestSecurityTokenResponse ` + ns + ` Context="urn:uuid:ours"/>`, ErrMalformedResponse},
		{"not ws-trust", `<samlp:Response xmlns:samlp="` + nsSAMLP + `"/>`, ErrMalformedResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readWSTrust(wstBody(t, tt.xml), "urn:uuid:ours")
			require.ErrorIs(t, err, tt.want)
		})
	}
	a, err := readWSTrust(wstBody(t, `<wst:RequestSecurityTokenResponseCollection `+ns+`><wst:RequestSecurityTokenResponse Context="urn:uuid:ours"><wst:SignChallenge><wst:Challenge>x</wst:Challenge></wst:SignChallenge></wst:RequestSecurityTokenResponse></wst:RequestSecurityTokenResponseCollection>`), "urn:uuid:ours")
	require.NoError(t, err)
	require.NotNil(t, a.challenge)
	resp := challengeResponse(a)
	require.NotNil(t, resp.FindElement("./SignChallengeResponse/Challenge"))
	require.Nil(t, resp.FindElement("./SignChallenge"))
}

// The WS-Trust STS refuses, as a SOAP fault, what lacks a designator of the profile or claims
// what the identity is not; the provider reports it without calling it an outage.
func TestPlatform_WSTrustRefusals(t *testing.T) {
	for name, change := range map[string]func(o *onPlatform){
		"lacking designators": func(o *onPlatform) {
			o.cfg.Attributes = AttributeSet{Claimed: PresetPharmacy.Claimed, Certified: PresetPharmacy.Certified[:3]}
		},
		"claiming another SSIN": func(o *onPlatform) { o.cfg.SSIN = "00010100184" },
	} {
		t.Run(name, func(t *testing.T) {
			o := newOnPlatformIn(t, DialectWSTrust, 0, 0)
			change(o)
			_, err := o.start(t).Token(context.Background())
			require.ErrorIs(t, err, ErrNoToken)
			require.False(t, errors.Is(err, bcp.ErrUnavailable), "%v", err)
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.Contains(t, f.String, "wst:RequestFailed")
			require.Zero(t, o.plat.TokensIssued())
			require.NotContains(t, err.Error(), o.id.SSIN)
		})
	}
}

// Renew sends the token held while it is valid and gets a new one bound to the same key;
// once none is valid, Issue again.
func TestPlatform_WSTrustRenewsWithTheTokenHeld(t *testing.T) {
	o := newOnPlatformIn(t, DialectWSTrust, 0, 0)
	p, rec := o.startRecorded(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	second, err := p.Renew(context.Background())
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	require.Equal(t, 2, o.plat.TokensIssued())
	sent := rec.requests()
	require.Len(t, sent, 2)
	require.Contains(t, string(sent[0].body), requestIssue)
	require.Contains(t, string(sent[1].body), requestRenew)
	ans, err := o.insurability(t, second)
	require.NoError(t, err)
	require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
	require.Equal(t, 2, o.plat.Count("", platformtest.ServiceSTSWSTrust, platformtest.OutcomeOK))
}
