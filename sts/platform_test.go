package sts

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/platformtest"
	"github.com/ehgate/ehgate/soap"
)

// onPlatform is a Provider for a registered pharmacy of a platformtest platform, reaching the
// STS through a bcp.Engine routed by the platform's service list.
type onPlatform struct {
	plat   *platformtest.Platform
	id     *platformtest.Identity
	clock  *fakeClock
	engine *bcp.Engine
	cfg    ProviderConfig
}

// newOnPlatform starts a platform granting lifetime (0 = its default); attempts on the STS
// endpoint time out after attemptTimeout (0 = 10 s).
func newOnPlatform(t *testing.T, lifetime, attemptTimeout time.Duration) *onPlatform {
	t.Helper()
	return newOnPlatformIn(t, DialectSAMLP, lifetime, attemptTimeout)
}

// dialects runs f once per dialect, as a subtest named after it.
func dialects(t *testing.T, f func(t *testing.T, d Dialect)) {
	for _, d := range []Dialect{DialectSAMLP, DialectWSTrust} {
		t.Run(d.String(), func(t *testing.T) { f(t, d) })
	}
}

// stsService is the platform's service of the provider's dialect.
func (o *onPlatform) stsService() string {
	if o.cfg.Dialect == DialectWSTrust {
		return platformtest.ServiceSTSWSTrust
	}
	return platformtest.ServiceSTS
}

// newOnPlatformIn is newOnPlatform speaking dialect d.
func newOnPlatformIn(t *testing.T, d Dialect, lifetime, attemptTimeout time.Duration) *onPlatform {
	t.Helper()
	clock := newFakeClock(time.Now().UTC().Truncate(time.Second))
	plat, err := platformtest.Start(platformtest.Config{Now: clock.Now, TokenLifetime: lifetime, Patients: 50, Seed: 7})
	require.NoError(t, err)
	t.Cleanup(plat.Close)
	id, err := plat.NewIdentity(platformtest.Pharmacy, "Apotheek Centrum")
	require.NoError(t, err)

	// The credential comes from a PKCS#12 keystore, as the platform delivers it.
	p12, err := id.PKCS12("keystore-pass")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "identity.p12")
	require.NoError(t, os.WriteFile(path, p12, 0o600))
	cred, err := LoadPKCS12(path, "keystore-pass", LoadOptions{Now: clock.Now, Roots: plat.ProviderCertPool()})
	require.NoError(t, err)
	o := &onPlatform{plat: plat, id: id, clock: clock, cfg: ProviderConfig{
		Dialect:        d,
		Identification: cred,
		Attributes:     PresetPharmacy,
		SSIN:           id.SSIN,
		NIHII:          id.NIHII,
		STSRoots:       plat.STSRoots(),
		RetryInitial:   time.Second,
		RetryMax:       time.Minute,
	}}
	return o.withEngine(t, attemptTimeout)
}

// withEngine returns a copy of o routed by a new bcp.Engine (fresh breakers) on the platform's
// service list, whose attempts on the STS time out after attemptTimeout (0 = 10 s).
func (o *onPlatform) withEngine(t *testing.T, attemptTimeout time.Duration) *onPlatform {
	t.Helper()
	list, err := bcp.ParseServiceList(o.plat.ServiceList())
	require.NoError(t, err)
	engine, err := bcp.New(bcp.Config{
		ServiceList: list,
		Services: map[string]bcp.ServicePolicy{
			ServiceName:        {AttemptTimeout: cmp.Or(attemptTimeout, 10*time.Second)},
			ServiceNameWSTrust: {AttemptTimeout: cmp.Or(attemptTimeout, 10*time.Second)},
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = engine.Close() })
	c := *o
	c.engine, c.cfg.Router = engine, engine
	return &c
}

func (o *onPlatform) start(t *testing.T) *Provider {
	t.Helper()
	p, err := NewProvider(o.cfg, WithClock(o.clock), WithHTTPClient(o.plat.HTTPClient()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func (o *onPlatform) sts() *platformtest.Site { return o.plat.Site("ehealth") }

// insurability asks the platform's insurability service about a known patient, signing with
// the token, and returns the answer's root element or the fault.
func (o *onPlatform) insurability(t *testing.T, tok *Token) (*etree.Element, error) {
	t.Helper()
	signer, err := soap.NewSigner(soap.SignerConfig{Key: o.cfg.Identification.Key, Assertion: tok.Assertion, Now: o.clock.Now})
	require.NoError(t, err)
	return o.insurabilityWith(t, signer)
}

// insurabilityWith is insurability signing with signer.
func (o *onPlatform) insurabilityWith(t *testing.T, signer *soap.Signer) (*etree.Element, error) {
	t.Helper()
	var ssin string
	for _, pt := range o.plat.Patients() {
		if pt.Known {
			ssin = pt.SSIN
			break
		}
	}
	r := etree.NewElement("ins:GetInsurabilityForPharmacistRequest")
	r.CreateAttr("xmlns:ins", platformtest.NSInsurabilityProtocol)
	r.CreateAttr("xmlns:core", platformtest.NSInsurabilityCore)
	// As the schema wants it (insurabilityservices_protocol-2_0.xsd): the parts in the protocol
	// namespace, their content in the core namespace, a numeric Reference, a one-character
	// RequestType.
	ci := r.CreateElement("ins:CommonInput")
	ci.CreateElement("core:Request").CreateElement("core:IsTest").SetText("false")
	lic := ci.CreateElement("core:Origin").CreateElement("core:Package").CreateElement("core:License")
	lic.CreateElement("core:Username").SetText("vendor")
	lic.CreateElement("core:Password").SetText("licence")
	r.CreateElement("ins:RecordCommonInput").CreateElement("core:Reference").SetText("4242")
	ir := r.CreateElement("ins:InsurabilityRequest")
	ir.CreateElement("core:Date").SetText(o.clock.Now().Format("2006-01-02"))
	ir.CreateElement("core:RequestType").SetText("I")
	ir.CreateElement("core:CareReceiver").CreateElement("core:Ssin").SetText(ssin)

	msg, err := signer.Sign(soap.NewEnvelope(r))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, o.plat.URL(platformtest.ServiceInsurability, "ehealth"), bytes.NewReader(msg))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+platformtest.ActionInsurability+`"`)
	resp, err := o.plat.HTTPClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return soap.ReadResponse(bytes.NewReader(body), soap.Limits{})
}

func TestPlatform_TokenIsIssuedAndAcceptedByInsurability(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 0, 0)
		p := o.start(t)
		tok, err := p.Token(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, o.plat.TokensIssued())
		require.Equal(t, 5*time.Hour, tok.Lifetime(), "the platform's default grant, not the 24 h asked")
		require.Equal(t, []string{"true"}, tok.Attributes[platformtest.AttrRecognisedPharmacy])
		require.Equal(t, []string{o.id.NIHII11}, tok.Attributes[platformtest.AttrPharmacyHolderNIHII11])
		issued := o.plat.Tokens()[0]
		require.Equal(t, issued.AssertionID, tok.ID)
		require.Equal(t, issued.NotOnOrAfter.UTC(), tok.NotOnOrAfter)

		ans, err := o.insurability(t, tok)
		require.NoError(t, err)
		require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
		require.Equal(t, "00", ans.FindElement(".//ReturnCode/Major").Text())
	})
}

func TestPlatform_ProviderSignerIsAcceptedByInsurability(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 0, 0)
		p := o.start(t)
		signer, err := p.Signer(context.Background())
		require.NoError(t, err)
		again, err := p.Signer(context.Background())
		require.NoError(t, err)
		require.Same(t, signer, again, "one signer per token")
		ans, err := o.insurabilityWith(t, signer)
		require.NoError(t, err)
		require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
		require.Equal(t, 1, o.plat.TokensIssued())
	})
}

func TestPlatform_SeparateHolderOfKeyCredential(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 0, 0)
		hok := getPKI(t).credential(t, 1, "application holder-of-key")
		o.cfg.HolderOfKey = hok
		p := o.start(t)
		tok, err := p.Token(context.Background())
		require.NoError(t, err)
		_, err = soap.NewSigner(soap.SignerConfig{Key: hok.Key, Assertion: tok.Assertion})
		require.NoError(t, err)
		// The business service accepts a message signed with the holder-of-key key.
		require.True(t, p.HolderOfKey().Certificate.Equal(hok.Certificate))
		signer, err := p.Signer(context.Background())
		require.NoError(t, err)
		ans, err := o.insurabilityWith(t, signer)
		require.NoError(t, err)
		require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
	})
}

func TestPlatform_GPPreset(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 0, 0)
		gp, err := o.plat.NewIdentity(platformtest.GP, "Dokter Peeters")
		require.NoError(t, err)
		cert, key := gp.PEM()
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "gp.pem"), filepath.Join(dir, "gp.key")
		require.NoError(t, os.WriteFile(certFile, cert, 0o600))
		require.NoError(t, os.WriteFile(keyFile, key, 0o600))
		cred, err := LoadPEM(certFile, keyFile, "", LoadOptions{Now: o.clock.Now})
		require.NoError(t, err)
		require.Len(t, cred.Chain, 1)
		o.cfg.Identification, o.cfg.Attributes, o.cfg.SSIN, o.cfg.NIHII = cred, PresetGP, gp.SSIN, gp.NIHII
		p := o.start(t)
		tok, err := p.Token(context.Background())
		require.NoError(t, err)
		require.Equal(t, []string{"true"}, tok.Attributes[platformtest.AttrDoctorBoolean])
		require.Equal(t, []string{gp.NIHII11}, tok.Attributes[platformtest.AttrDoctorNIHII11])
	})
}

func TestPlatform_RefusedIdentityIsAStatusError(t *testing.T) {
	o := newOnPlatform(t, 0, 0)
	o.cfg.SSIN = "00010100184" // claims an SSIN the identity is not registered with
	p := o.start(t)
	_, err := p.Token(context.Background())
	require.ErrorIs(t, err, ErrNoToken)
	require.False(t, errors.Is(err, bcp.ErrUnavailable))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "samlp:Requester", se.Code)
	require.Equal(t, []string{"samlp:RequestDenied"}, se.SubCodes)
	require.Equal(t, 0, o.plat.TokensIssued())
}

func TestPlatform_RenewsAtTheGrantedLifetime(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 2*time.Hour, 0) // the request asks 24 h; the STS grants 2 h
		start := o.clock.Now()
		p := o.start(t)
		first, err := p.Token(context.Background())
		require.NoError(t, err)
		require.Equal(t, 2*time.Hour, first.Lifetime())
		require.True(t, o.clock.WaitTimer(start.Add(time.Hour), 5*time.Second), "renewal scheduled at half the granted 2 h; pending %v", o.clock.Pending())

		o.clock.Advance(59 * time.Minute)
		require.Equal(t, 1, o.plat.TokensIssued())
		o.clock.Advance(time.Minute)
		require.Eventually(t, func() bool { return o.plat.TokensIssued() == 2 }, 5*time.Second, time.Millisecond)
		require.True(t, o.clock.WaitTimer(start.Add(2*time.Hour), 5*time.Second), "next renewal an hour later")
		second, err := p.Token(context.Background())
		require.NoError(t, err)
		require.NotEqual(t, first.ID, second.ID)
		require.Equal(t, o.plat.Tokens()[1].AssertionID, second.ID)
		ans, err := o.insurability(t, second)
		require.NoError(t, err)
		require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
	})
}

func TestPlatform_ThousandConcurrentCallersCauseOneRequest(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		o := newOnPlatformIn(t, d, 0, 0)
		o.sts().Inject(o.stsService(), platformtest.Fault{Kind: platformtest.FaultDelay, Delay: 50 * time.Millisecond})
		p := o.start(t)
		const callers = 1000
		var wg sync.WaitGroup
		ids := make([]string, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := p.Token(context.Background())
				errs[i] = err
				if err == nil {
					ids[i] = tok.ID
				}
			}()
		}
		wg.Wait()
		for i := range callers {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, 1, o.plat.TokensIssued())
		require.Equal(t, 1, o.plat.Count("", o.stsService(), platformtest.OutcomeOK))
	})
}

// stsFaults are the STS misbehaviours and what Token must say when no valid token is left.
type stsFault struct {
	name        string
	fault       platformtest.Fault
	wholeSite   bool          // inject for every service of the site (its listener closes)
	attempt     time.Duration // bcp attempt timeout on the STS; 0 = 10 s
	limits      soap.Limits   // ProviderConfig.Limits
	unreachable bool          // errors.Is bcp.ErrUnavailable
	want        error         // also errors.Is, when not nil
	as          func(t *testing.T, err error)
}

var stsFaults = []stsFault{
	{name: "refuse site", fault: platformtest.Fault{Kind: platformtest.FaultRefuse}, wholeSite: true, unreachable: true},
	{name: "reset", fault: platformtest.Fault{Kind: platformtest.FaultRefuse}, unreachable: true},
	{name: "hang", fault: platformtest.Fault{Kind: platformtest.FaultHang}, attempt: 2 * time.Second, unreachable: true, want: context.DeadlineExceeded},
	{name: "http 503", fault: platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: http.StatusServiceUnavailable}, unreachable: true,
		as: func(t *testing.T, err error) {
			var se *bcp.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, http.StatusServiceUnavailable, se.StatusCode)
		}},
	{name: "soap fault", fault: platformtest.Fault{Kind: platformtest.FaultSOAP, Code: "SOA-02001"}, unreachable: true,
		as: func(t *testing.T, err error) {
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.True(t, f.HasCode("SOA-02001"))
		}},
	// A garbled answer is the endpoint's failure (the one SOAP client's rule, issue 17).
	{name: "malformed", fault: platformtest.Fault{Kind: platformtest.FaultMalformed}, want: ErrMalformedResponse, unreachable: true},
	{name: "huge", fault: platformtest.Fault{Kind: platformtest.FaultHuge, Size: 64 << 20}, limits: soap.Limits{MaxBytes: 256 << 10}, want: soap.ErrLimit, unreachable: true},
	{name: "bad sts signature", fault: platformtest.Fault{Kind: platformtest.FaultBadSTSSignature}, want: ErrSignature,
		as: func(t *testing.T, err error) { require.ErrorIs(t, err, soap.ErrSignature) }},
	{name: "expired assertion", fault: platformtest.Fault{Kind: platformtest.FaultExpiredToken}, want: ErrExpired},
}

func TestPlatform_STSFaultsWithoutATokenAreTypedErrors(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		shared := newOnPlatformIn(t, d, 0, 0)
		for _, tt := range stsFaults {
			t.Run(tt.name, func(t *testing.T) {
				o := shared.withEngine(t, tt.attempt)
				o.cfg.Limits = tt.limits
				defer o.sts().Clear("")
				o.sts().Inject(tt.service(o), tt.fault)
				p := o.start(t)
				_, err := p.Token(context.Background())
				require.Error(t, err)
				require.ErrorIs(t, err, ErrNoToken)
				var te *TokenError
				require.ErrorAs(t, err, &te)
				require.Equal(t, tt.unreachable, errors.Is(err, bcp.ErrUnavailable), "%v", err)
				if tt.want != nil {
					require.ErrorIs(t, err, tt.want)
				}
				if tt.as != nil {
					tt.as(t, err)
				}
				require.NotContains(t, err.Error(), o.id.SSIN)
				o.sts().Clear("")
			})
		}
	})
}

func TestPlatform_STSFaultsDuringRenewalKeepTheValidToken(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		shared := newOnPlatformIn(t, d, 2*time.Hour, 0)
		for _, tt := range stsFaults {
			t.Run(tt.name, func(t *testing.T) {
				o := shared.withEngine(t, tt.attempt)
				o.cfg.Limits = tt.limits
				defer o.sts().Clear("")
				start := o.clock.Now()
				p := o.start(t)
				first, err := p.Token(context.Background())
				require.NoError(t, err)
				require.True(t, o.clock.WaitTimer(start.Add(time.Hour), 5*time.Second))

				o.sts().Inject(tt.service(o), tt.fault)
				o.clock.Advance(time.Hour) // renewal due: it meets the fault
				require.Eventually(t, func() bool { return p.Requests() == 2 }, 5*time.Second, time.Millisecond)
				// Whatever the renewal is going through, callers get the valid token at once.
				for range 10 {
					tok, err := p.Token(context.Background())
					require.NoError(t, err)
					require.Same(t, first, tok)
				}
				_, ok := o.clock.WaitTimerIn(o.clock.Now(), first.NotOnOrAfter.Add(-time.Minute), 5*time.Second)
				require.True(t, ok, "a retry is scheduled")
				if !tt.wholeSite {
					ans, err := o.insurability(t, first)
					require.NoError(t, err, "the kept token still works on the business service")
					require.Equal(t, "GetInsurabilityForPharmacistResponse", ans.Tag)
				}

				// The STS recovers: the next retry renews.
				o.sts().Clear("")
				o.clock.Advance(time.Minute)
				require.Eventually(t, func() bool {
					tok, err := p.Token(context.Background())
					return err == nil && tok.ID != first.ID
				}, 5*time.Second, time.Millisecond)
			})
		}
	})
}

func (f stsFault) service(o *onPlatform) string {
	if f.wholeSite {
		return ""
	}
	return o.stsService()
}

func TestPlatform_STSClockSkew(t *testing.T) {
	dialects(t, func(t *testing.T, d Dialect) {
		// The STS's clock is 3 minutes ahead: its NotBefore is in our future.
		for _, tt := range []struct {
			name string
			skew time.Duration // our tolerance
			want error
		}{
			{"within the tolerance", 0, nil},
			{"beyond the tolerance", time.Minute, ErrNotYetValid},
		} {
			t.Run(tt.name, func(t *testing.T) {
				o := newOnPlatformIn(t, d, 0, 0)
				o.cfg.ClockSkew = tt.skew
				o.sts().Inject(o.stsService(), platformtest.Fault{Kind: platformtest.FaultClockSkew, Skew: 3 * time.Minute})
				p := o.start(t)
				tok, err := p.Token(context.Background())
				if tt.want != nil {
					require.ErrorIs(t, err, tt.want)
					require.ErrorIs(t, err, ErrNoToken)
					return
				}
				require.NoError(t, err)
				require.Equal(t, o.clock.Now().Add(3*time.Minute), tok.NotBefore)
			})
		}
	})
}
