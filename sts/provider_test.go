package sts

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
)

const testSSIN = "79021802145"

// harness is a Provider against a fakeSTS on a fake clock.
type harness struct {
	clock *fakeClock
	sts   *fakeSTS
	cfg   ProviderConfig
	logs  *observer.ObservedLogs
}

func newHarness(t testing.TB, grant time.Duration) *harness {
	t.Helper()
	return newHarnessWith(t, grant, newFakeClock(fixedNow()))
}

// newHarnessWith uses clock, or the system clock when clock is nil.
func newHarnessWith(t testing.TB, grant time.Duration, clock *fakeClock) *harness {
	t.Helper()
	p := getPKI(t)
	now := time.Now
	if clock != nil {
		now = clock.Now
	}
	s := newFakeSTS(t, now, grant)
	return &harness{
		clock: clock,
		sts:   s,
		cfg: ProviderConfig{
			Identification: p.credential(t, 0, "NIHII-PHARMACY=12345678"),
			Attributes:     PresetPharmacy,
			SSIN:           testSSIN,
			NIHII:          "12345678",
			STSRoots:       s.STSRoots(),
			STSSigner:      s.Pin(),
			Router:         FixedEndpoint(s.srv.URL + "/IAM/Saml11TokenService/v1"),
			RetryInitial:   time.Second,
			RetryMax:       time.Minute,
		},
	}
}

func (h *harness) start(t testing.TB) *Provider {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h.logs = logs
	opts := []Option{WithHTTPClient(h.sts.srv.Client()), WithLogger(zap.New(core))}
	if h.clock != nil {
		opts = append(opts, WithClock(h.clock))
	}
	p, err := NewProvider(h.cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// settle waits until the provider's background loop sleeps on its timer at `at`.
func (h *harness) settle(t *testing.T, at time.Time) {
	t.Helper()
	require.True(t, h.clock.WaitTimer(at, 5*time.Second), "no timer at %s; pending %v", at, h.clock.Pending())
}

func TestProvider_ObtainsTokenWithTheSpecifiedRequest(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	p := h.start(t)

	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, 5*time.Hour, tok.Lifetime())
	require.Equal(t, fixedNow(), tok.NotBefore)
	require.Equal(t, []string{"true"}, tok.Attributes["urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"])
	require.NotEmpty(t, tok.ID)
	require.Equal(t, int64(1), h.sts.requests.Load())

	// The request as the STS received it (after checking its WS-Security signature).
	doc, hokSigner := h.sts.lastRequest()
	require.Nil(t, hokSigner, "same identification and holder-of-key credential: no inner signature")
	req, err := soap.BodyContent(doc)
	require.NoError(t, err)
	require.Equal(t, "1", req.SelectAttrValue("MajorVersion", ""))
	require.Equal(t, "1", req.SelectAttrValue("MinorVersion", ""))
	require.Equal(t, fixedNow().Format(samlTime), req.SelectAttrValue("IssueInstant", ""))
	query := childNS(req, nsSAMLP, "AttributeQuery")
	subj := childNS(query, nsSAML, "Subject")
	ni := childNS(subj, nsSAML, "NameIdentifier")
	ident := h.cfg.Identification.Certificate
	// Names as the official connector writes them (Java's RFC 1779), not Go's RFC 2253.
	const subject = `OID.2.5.4.5=79021802145, CN="NIHII-PHARMACY=12345678", O=Pharmacie Test, C=BE`
	require.Equal(t, subject, ni.Text())
	require.Equal(t, "CN=Test Citizen CA, O=ehgate test, C=BE", ni.SelectAttrValue("NameQualifier", ""))
	require.Equal(t, formatX509SubjectName, ni.SelectAttrValue("Format", ""))
	conf := childNS(subj, nsSAML, "SubjectConfirmation")
	require.Equal(t, methodHolderOfKey, childNS(conf, nsSAML, "ConfirmationMethod").Text())
	inner := childNS(childNS(conf, nsSAML, "SubjectConfirmationData"), nsSAML, "Assertion")
	require.Equal(t, subject, inner.SelectAttrValue("Issuer", ""))
	innerNI := childNS(childNS(childNS(inner, nsSAML, "AttributeStatement"), nsSAML, "Subject"), nsSAML, "NameIdentifier")
	require.Equal(t, subject, innerNI.Text())
	require.Equal(t, ni.SelectAttrValue("NameQualifier", ""), innerNI.SelectAttrValue("NameQualifier", ""))
	cond := childNS(inner, nsSAML, "Conditions")
	require.Equal(t, fixedNow().Add(24*time.Hour).Format(samlTime), cond.SelectAttrValue("NotOnOrAfter", ""), "default requested lifetime 24 h")
	var claimed []string
	for _, a := range childNS(inner, nsSAML, "AttributeStatement").ChildElements() {
		if a.Tag == "Attribute" {
			claimed = append(claimed, a.SelectAttrValue("AttributeNamespace", "")+" "+a.SelectAttrValue("AttributeName", "")+"="+childNS(a, nsSAML, "AttributeValue").Text())
		}
	}
	require.Equal(t, []string{
		NamespaceIdentification + " urn:be:fgov:ehealth:1.0:certificateholder:person:ssin=" + testSSIN,
		NamespaceIdentification + " urn:be:fgov:ehealth:1.0:pharmacy:nihii-number=12345678",
		NamespaceIdentification + " urn:be:fgov:person:ssin=" + testSSIN,
		NamespaceIdentification + " urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder=" + testSSIN,
	}, claimed)
	certText := childNS(childNS(childNS(conf, nsDSig, "KeyInfo"), nsDSig, "X509Data"), nsDSig, "X509Certificate").Text()
	require.Equal(t, base64.StdEncoding.EncodeToString(ident.Raw), certText)
	var designators []string
	for _, d := range query.ChildElements() {
		if d.Tag == "AttributeDesignator" {
			designators = append(designators, d.SelectAttrValue("AttributeNamespace", "")+" "+d.SelectAttrValue("AttributeName", ""))
		}
	}
	// The seven designators of the official pharmacy configuration, in its order.
	require.Equal(t, []string{
		NamespaceIdentification + " urn:be:fgov:ehealth:1.0:certificateholder:person:ssin",
		NamespaceIdentification + " urn:be:fgov:ehealth:1.0:pharmacy:nihii-number",
		NamespaceCertified + " urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean",
		NamespaceIdentification + " urn:be:fgov:person:ssin",
		NamespaceIdentification + " urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder",
		NamespaceCertified + " urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11",
		NamespaceCertified + " urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean",
	}, designators)

	// The WS-Security signature covers Body, Timestamp and the BinarySecurityToken.
	sigRefs := doc.FindElements("//ds:SignedInfo/ds:Reference")
	require.Len(t, sigRefs, 3)
	bstID := doc.FindElement("//wsse:BinarySecurityToken").SelectAttrValue("wsu:Id", "")
	require.Equal(t, "#"+bstID, sigRefs[2].SelectAttrValue("URI", ""))

	// The token signs a business message that a holder-of-key verifier accepts.
	signer, err := soap.NewSigner(soap.SignerConfig{Key: h.cfg.Identification.Key, Assertion: tok.Assertion, Now: h.clock.Now})
	require.NoError(t, err)
	msg, err := signer.Sign(soap.NewEnvelope(etree.NewElement("Ping")))
	require.NoError(t, err)
	require.True(t, bytes.Contains(msg, tok.Assertion), "assertion travels byte for byte")
	v, err := soap.NewVerifier(soap.VerifierConfig{Now: h.clock.Now, Assertion: func(a *etree.Element) (*x509.Certificate, error) {
		if _, err := soap.VerifyEnveloped(a, h.sts.STSRoots(), soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: h.clock.Now}); err != nil {
			return nil, err
		}
		return ident, nil
	}})
	require.NoError(t, err)
	_, err = v.Verify(msg)
	require.NoError(t, err)

	// Nothing personal in the logs at info or above.
	for _, e := range h.logs.All() {
		if e.Level >= zapcore.InfoLevel {
			line := fmt.Sprint(e.Message, e.ContextMap())
			require.NotContains(t, line, testSSIN)
			require.NotContains(t, line, "Assertion")
		}
	}
}

func TestProvider_SeparateHolderOfKeySignsTheRequest(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	hok := getPKI(t).credential(t, 1, "holder of key")
	h.cfg.HolderOfKey = hok
	p := h.start(t)

	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	_, hokSigner := h.sts.lastRequest()
	require.NotNil(t, hokSigner, "samlp:Request carries an enveloped signature")
	require.True(t, hokSigner.Equal(hok.Certificate))
	doc, _ := h.sts.lastRequest()
	req, _ := soap.BodyContent(doc)
	kids := req.ChildElements()
	require.Equal(t, "Signature", kids[0].Tag, "ds:Signature before samlp:AttributeQuery")
	require.Equal(t, "AttributeQuery", kids[1].Tag)

	// The assertion is bound to the holder-of-key certificate, and the identity differs.
	_, err = soap.NewSigner(soap.SignerConfig{Key: hok.Key, Assertion: tok.Assertion})
	require.NoError(t, err)
	h2 := *h
	h2.cfg.HolderOfKey = nil
	require.NotEqual(t, identityOf(h.cfg.withDefaults()), identityOf(h2.cfg.withDefaults()))
}

func TestProvider_NamespacesInheritedFromTheResponseTravelWithTheAssertion(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) { return issue{inherit: true}, nil })
	p := h.start(t)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(tok.Assertion, []byte("<saml:Assertion xmlns:ds=")), "declarations added: %.120s", tok.Assertion)

	// Standing alone, the bytes parse, verify and are accepted by the signer.
	doc := etree.NewDocument()
	require.NoError(t, doc.ReadFromBytes(tok.Assertion))
	_, err = soap.VerifyEnveloped(doc.Root(), h.sts.STSRoots(), soap.VerifyEnvelopedOptions{IDAttr: "AssertionID", Now: h.clock.Now})
	require.NoError(t, err)
	_, err = soap.NewSigner(soap.SignerConfig{Key: h.cfg.Identification.Key, Assertion: tok.Assertion})
	require.NoError(t, err)
}

func TestProvider_RejectsBadAnswers(t *testing.T) {
	other := getPKI(t).credential(t, 2, "someone else")
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name   string
		issue  issue
		h      http.HandlerFunc
		limits soap.Limits
		check  func(t *testing.T, err error)
	}{
		{name: "status not success", issue: issue{status: "samlp:Requester", subStatus: "samlp:RequestDenied", statusMessage: "unknown identity"},
			check: func(t *testing.T, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, "samlp:Requester", se.Code)
				require.Equal(t, []string{"samlp:RequestDenied"}, se.SubCodes)
				require.Equal(t, "unknown identity", se.Message)
				require.Contains(t, err.Error(), "samlp:Requester/samlp:RequestDenied: unknown identity")
			}},
		{name: "two assertions", issue: issue{assertions: 2}, check: isErr(ErrMalformedResponse)},
		{name: "answer to another request", issue: issue{inResponseTo: "_other"}, check: isErr(ErrInResponseTo)},
		{name: "no assertion", issue: issue{assertions: -1}, check: isErr(ErrMalformedResponse)},
		{name: "assertion altered after signing", issue: issue{tamper: true}, check: func(t *testing.T, err error) {
			require.ErrorIs(t, err, ErrSignature)
			require.ErrorIs(t, err, soap.ErrDigest)
		}},
		{name: "other issuer", issue: issue{issuer: "urn:evil"}, check: isErr(ErrIssuer)},
		{name: "already expired", issue: issue{notBefore: -3 * time.Hour, lifetime: time.Hour}, check: isErr(ErrExpired)},
		{name: "not yet valid beyond the clock skew", issue: issue{notBefore: 10 * time.Minute}, check: isErr(ErrNotYetValid)},
		{name: "bound to another certificate", issue: issue{hokCert: other.Certificate}, check: isErr(ErrHolderOfKey)},
		{name: "bearer confirmation", issue: issue{confirmation: "urn:oasis:names:tc:SAML:1.0:cm:bearer"}, check: isErr(ErrHolderOfKey)},
		{name: "soap fault", h: func(w http.ResponseWriter, r *http.Request) {
			out, _ := soap.Marshal(soap.NewFaultEnvelope(&soap.Fault{Code: "soapenv:Client", String: "invalid request", Codes: []string{"SOA-00001"}}))
			rawHandler(http.StatusInternalServerError, "text/xml", string(out))(w, r)
		}, check: func(t *testing.T, err error) {
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
			require.True(t, f.HasCode("SOA-00001"))
			require.False(t, errors.Is(err, bcp.ErrUnavailable), "a client fault is not an outage")
		}},
		{name: "outage fault", h: func(w http.ResponseWriter, r *http.Request) {
			out, _ := soap.Marshal(soap.NewFaultEnvelope(&soap.Fault{Code: "soapenv:Server", String: "down", Codes: []string{"SOA-02001"}}))
			rawHandler(http.StatusInternalServerError, "text/xml", string(out))(w, r)
		}, check: func(t *testing.T, err error) {
			require.ErrorIs(t, err, bcp.ErrUnavailable)
			var f *soap.Fault
			require.ErrorAs(t, err, &f)
		}},
		{name: "html error page", h: rawHandler(http.StatusServiceUnavailable, "text/html", "<html>maintenance</html>", "Retry-After", "120"),
			check: func(t *testing.T, err error) {
				var se *bcp.StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, http.StatusServiceUnavailable, se.StatusCode)
				require.Equal(t, 2*time.Minute, se.RetryAfter)
				require.Equal(t, "text/html", se.ContentType)
				require.ErrorIs(t, err, bcp.ErrUnavailable)
			}},
		{name: "not xml", h: rawHandler(http.StatusOK, "text/xml", "<<<"), check: func(t *testing.T, err error) {
			require.ErrorIs(t, err, ErrMalformedResponse)
			require.ErrorIs(t, err, soap.ErrMalformed)
		}},
		{name: "doctype", h: rawHandler(http.StatusOK, "text/xml", `<!DOCTYPE x [<!ENTITY a "b">]><x/>`), check: isErr(soap.ErrDoctype)},
		{name: "not a samlp:Response", h: rawHandler(http.StatusOK, "text/xml", `<s:Envelope xmlns:s="`+soap.NSEnvelope+`"><s:Body><x:Other xmlns:x="urn:x"/></s:Body></s:Envelope>`), check: isErr(ErrMalformedResponse)},
		{name: "oversized", limits: soap.Limits{MaxBytes: 1024}, h: rawHandler(http.StatusOK, "text/xml", big), check: func(t *testing.T, err error) {
			var le *soap.LimitError
			require.ErrorAs(t, err, &le)
			require.Equal(t, "bytes", le.Limit)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 5*time.Hour)
			h.cfg.Limits = tt.limits
			h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) { return tt.issue, tt.h })
			p := h.start(t)
			_, err := p.Token(context.Background())
			require.Error(t, err)
			require.ErrorIs(t, err, ErrNoToken)
			var te *TokenError
			require.ErrorAs(t, err, &te)
			require.Equal(t, p.Identity(), te.Identity)
			require.NotContains(t, err.Error(), testSSIN)
			tt.check(t, err)
		})
	}
}

func isErr(target error) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		require.ErrorIs(t, err, target)
	}
}

func TestProvider_ClockSkewTolerated(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	h.cfg.ClockSkew = 15 * time.Minute
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) { return issue{notBefore: 10 * time.Minute}, nil })
	p := h.start(t)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, fixedNow().Add(10*time.Minute), tok.NotBefore)
}

func TestProvider_RenewsAtHalfTheGrantedLifetime(t *testing.T) {
	// The request asks for 24 h; the STS grants 2 h: renewal is due after 1 h, not 12 h.
	h := newHarness(t, 2*time.Hour)
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2*time.Hour, first.Lifetime())
	h.settle(t, fixedNow().Add(time.Hour))

	h.clock.Advance(59 * time.Minute)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Same(t, first, tok)
	require.Equal(t, int64(1), h.sts.requests.Load())

	h.clock.Advance(time.Minute)
	// The renewal runs in the background; its new token is due for renewal an hour later.
	h.settle(t, fixedNow().Add(2*time.Hour))
	require.Equal(t, int64(2), h.sts.requests.Load())
	second, err := p.Token(context.Background())
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	require.Equal(t, fixedNow().Add(3*time.Hour), second.NotOnOrAfter)
}

func TestProvider_RenewFractionIsConfigurable(t *testing.T) {
	h := newHarness(t, 4*time.Hour)
	h.cfg.RenewFraction = 0.75
	p := h.start(t)
	_, err := p.Token(context.Background())
	require.NoError(t, err)
	h.settle(t, fixedNow().Add(3*time.Hour))
}

func TestProvider_FailedRenewalKeepsTokenAndRetriesWithBackoff(t *testing.T) {
	h := newHarness(t, 2*time.Hour)
	var down sync.Mutex
	failing := false
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		down.Lock()
		defer down.Unlock()
		if failing {
			return issue{}, rawHandler(http.StatusBadGateway, "text/html", "bad gateway")
		}
		return issue{}, nil
	})
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	h.settle(t, fixedNow().Add(time.Hour))

	down.Lock()
	failing = true
	down.Unlock()
	h.clock.Advance(time.Hour) // renewal due: it fails
	expiry := first.NotOnOrAfter.Add(-time.Minute)
	nextRetry := func(want int64) time.Duration {
		t.Helper()
		require.Eventually(t, func() bool { return h.sts.requests.Load() == want }, 5*time.Second, time.Millisecond)
		at, ok := h.clock.WaitTimerIn(h.clock.Now(), expiry, 5*time.Second)
		require.True(t, ok, "a retry is scheduled before the token expires; pending %v", h.clock.Pending())
		return at.Sub(h.clock.Now())
	}
	wait := nextRetry(2)
	require.LessOrEqual(t, wait, 2*time.Second, "first retry after about RetryInitial")

	// Callers keep the current token, without waiting for the STS.
	for range 100 {
		tok, err := p.Token(context.Background())
		require.NoError(t, err)
		require.Same(t, first, tok)
	}
	require.Equal(t, int64(2), h.sts.requests.Load())

	// Retries back off: the waits grow (RetryInitial 1 s, ×1.5 with jitter 0.5).
	prev := wait
	var waits []time.Duration
	for i := range 6 {
		h.clock.Advance(prev)
		prev = nextRetry(int64(3 + i))
		waits = append(waits, prev)
	}
	require.Greater(t, waits[5], 3*time.Second, "backoff grows: %v", waits)
	require.LessOrEqual(t, waits[5], time.Minute, "capped by RetryMax: %v", waits)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Same(t, first, tok)

	// The STS comes back: the next retry gets a fresh token.
	down.Lock()
	failing = false
	down.Unlock()
	h.clock.Advance(prev)
	require.Eventually(t, func() bool {
		tok, err := p.Token(context.Background())
		return err == nil && tok.ID != first.ID
	}, 5*time.Second, time.Millisecond)
}

func TestProvider_NoValidTokenLeftIsATypedError(t *testing.T) {
	h := newHarness(t, 2*time.Hour)
	var mu sync.Mutex
	var handler http.HandlerFunc
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		mu.Lock()
		defer mu.Unlock()
		return issue{}, handler
	})
	p := h.start(t)
	_, err := p.Token(context.Background())
	require.NoError(t, err)

	mu.Lock()
	handler = rawHandler(http.StatusServiceUnavailable, "text/plain", "down")
	mu.Unlock()
	h.clock.Advance(2 * time.Hour) // expired, and the STS is unreachable
	_, err = p.Token(context.Background())
	require.ErrorIs(t, err, ErrNoToken)
	require.ErrorIs(t, err, bcp.ErrUnavailable)
	var se *bcp.StatusError
	require.ErrorAs(t, err, &se)

	// The STS answers but refuses: ErrNoToken without ErrUnavailable.
	mu.Lock()
	handler = nil
	mu.Unlock()
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		return issue{status: "samlp:Responder", statusMessage: "try later"}, nil
	})
	_, err = p.Token(context.Background())
	require.ErrorIs(t, err, ErrNoToken)
	require.False(t, errors.Is(err, bcp.ErrUnavailable))
	var st *StatusError
	require.ErrorAs(t, err, &st)
}

func TestProvider_ConcurrentCallersShareOneRequest(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	gate := make(chan struct{})
	h.sts.mu.Lock()
	h.sts.gate = gate
	h.sts.mu.Unlock()
	p := h.start(t)

	const callers = 1000
	var wg sync.WaitGroup
	toks := make([]*Token, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = p.Token(context.Background())
		}()
	}
	require.Eventually(t, func() bool { return h.sts.requests.Load() >= 1 }, 5*time.Second, time.Millisecond)
	close(gate)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.Same(t, toks[0], toks[i])
	}
	require.Equal(t, int64(1), h.sts.requests.Load())
	require.Equal(t, int64(1), p.Requests())
}

func TestProvider_CallerContextBoundsTheWait(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	gate := make(chan struct{})
	h.sts.mu.Lock()
	h.sts.gate = gate
	h.sts.mu.Unlock()
	p := h.start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Token(ctx)
	require.ErrorIs(t, err, ErrNoToken)
	require.ErrorIs(t, err, context.Canceled)
	close(gate)
	// The request in flight was not abandoned with the caller.
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.NotNil(t, tok)
	require.Equal(t, int64(1), h.sts.requests.Load())
}

func TestProvider_RenewForcesANewToken(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	second, err := p.Renew(context.Background())
	require.NoError(t, err)
	require.NotEqual(t, first.ID, second.ID)
	tok, err := p.Token(context.Background())
	require.NoError(t, err)
	require.Same(t, second, tok)
}

func TestProvider_CloseStopsBackgroundWork(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	p, err := NewProvider(h.cfg, WithClock(h.clock), WithHTTPClient(h.sts.srv.Client()))
	require.NoError(t, err)
	_, err = p.Token(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	h.clock.Advance(10 * time.Hour)
	_, err = p.Token(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, ErrNoToken)
	require.Equal(t, int64(1), h.sts.requests.Load())
}

func TestProviderConfig_Validate(t *testing.T) {
	h := newHarness(t, time.Hour)
	tests := []struct {
		field  string
		mutate func(c *ProviderConfig)
	}{
		{"Identification", func(c *ProviderConfig) { c.Identification = nil }},
		{"STSRoots", func(c *ProviderConfig) { c.STSRoots = nil }},
		{"Router", func(c *ProviderConfig) { c.Router = nil }},
		{"RenewFraction", func(c *ProviderConfig) { c.RenewFraction = 1 }},
		{"ClockSkew", func(c *ProviderConfig) { c.ClockSkew = -1 }},
		{"Attributes", func(c *ProviderConfig) { c.Attributes = AttributeSet{} }},
		{"Attributes", func(c *ProviderConfig) { c.SSIN = "" }},
		{"RetryMax", func(c *ProviderConfig) { c.RetryInitial, c.RetryMax = time.Minute, time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			c := h.cfg
			tt.mutate(&c)
			err := c.Validate()
			require.ErrorContains(t, err, "ProviderConfig."+tt.field)
			_, err = NewProvider(c)
			require.Error(t, err)
		})
	}
	require.NoError(t, h.cfg.Validate())
}

func TestProvider_TokenIssuedLongBeforeIsNotRenewedInALoop(t *testing.T) {
	// A skewed STS issues a 4 h token whose NotBefore is 3 h ago: by the granted lifetime it
	// is already due, so the renewal is set at half of the hour that is left.
	h := newHarness(t, 4*time.Hour)
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) { return issue{notBefore: -3 * time.Hour}, nil })
	p := h.start(t)
	_, err := p.Token(context.Background())
	require.NoError(t, err)
	h.settle(t, fixedNow().Add(30*time.Minute))
	require.Equal(t, int64(1), h.sts.requests.Load())
}

func TestProviderConfig_ValidateChecksHandBuiltCredentials(t *testing.T) {
	h := newHarness(t, time.Hour)
	p := getPKI(t)
	bad := &Credential{Certificate: h.cfg.Identification.Certificate, Key: p.keys[2]}
	c := h.cfg
	c.Identification = bad
	require.ErrorContains(t, c.Validate(), "ProviderConfig.Identification")
	c = h.cfg
	c.HolderOfKey = bad
	require.ErrorContains(t, c.Validate(), "ProviderConfig.HolderOfKey")
}

func TestProvider_WallClockExpiresTheTokenWhenTimersLag(t *testing.T) {
	// Across a suspend the wall clock jumps while timers stand still: the periodic wall-clock
	// check still stops the expired token from being handed out.
	defer func(d time.Duration) { wallCheckInterval = d }(wallCheckInterval)
	wallCheckInterval = time.Millisecond
	h := newHarness(t, 2*time.Hour)
	p := h.start(t)
	first, err := p.Token(context.Background())
	require.NoError(t, err)
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		return issue{}, rawHandler(http.StatusServiceUnavailable, "text/plain", "down")
	})
	h.clock.Jump(3 * time.Hour)
	require.Eventually(t, func() bool {
		tok, err := p.Token(context.Background())
		return tok == nil && errors.Is(err, ErrNoToken) && errors.Is(err, bcp.ErrUnavailable)
	}, 5*time.Second, time.Millisecond, "token %s expired by the wall clock", first.ID)
}

func TestProvider_CloseWaitsForARequestStartedByACaller(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	store := newMemStore()
	h.cfg.Store = store
	gate := make(chan struct{})
	h.sts.mu.Lock()
	h.sts.gate = gate
	h.sts.mu.Unlock()
	p, err := NewProvider(h.cfg, WithClock(h.clock), WithHTTPClient(h.sts.srv.Client()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Token(ctx)
		done <- err
	}()
	require.Eventually(t, func() bool { return h.sts.requests.Load() == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, p.Close()) // cancels the request in flight and waits for it
	close(gate)
	store.mu.Lock()
	defer store.mu.Unlock()
	require.Empty(t, store.tokens, "nothing saved after Close")
	_, err = p.Token(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}
