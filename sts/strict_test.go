package sts

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/bcp"
)

// Each way an answer can say more than it should is refused with its own error.
func TestProvider_StrictAnswers(t *testing.T) {
	pki := getPKI(t)
	foreign := pki.credential(t, 2, "someone else")
	tests := []struct {
		name  string
		issue func(h *harness) issue
		cfg   func(c *ProviderConfig)
		check func(t *testing.T, err error)
	}{
		{name: "status code that only ends in Success", issue: func(*harness) issue { return issue{statusValue: "urn:evil:NotASuccess"} },
			check: func(t *testing.T, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, "urn:evil:NotASuccess", se.Code)
			}},
		{name: "Success of another namespace", issue: func(*harness) issue { return issue{statusValue: "saml:Success"} },
			check: func(t *testing.T, err error) {
				var se *StatusError
				require.ErrorAs(t, err, &se)
			}},
		{name: "InResponseTo absent", issue: func(*harness) issue { return issue{inResponseTo: "-"} }, check: isErr(ErrInResponseTo)},
		{name: "InResponseTo empty", issue: func(*harness) issue { return issue{inResponseTo: " "} }, check: isErr(ErrInResponseTo)},
		{name: "InResponseTo of another request", issue: func(*harness) issue { return issue{inResponseTo: "_x"} }, check: isErr(ErrInResponseTo)},
		{name: "second subject confirmation with a foreign certificate", issue: func(*harness) issue { return issue{secondConfirmation: foreign.Certificate} }, check: isErr(ErrConfirmation)},
		{name: "second subject confirmation with our certificate", issue: func(h *harness) issue {
			return issue{secondConfirmation: h.cfg.Identification.Certificate}
		}, check: isErr(ErrConfirmation)},
		{name: "lifetime of 100 years", issue: func(*harness) issue { return issue{lifetime: 100 * 365 * 24 * time.Hour} }, check: isErr(ErrLifetime)},
		{name: "lifetime longer than asked beyond the skew", cfg: func(c *ProviderConfig) { c.RequestedLifetime = time.Hour },
			issue: func(*harness) issue { return issue{lifetime: time.Hour + 6*time.Minute} }, check: isErr(ErrLifetime)},
		{name: "signed by our own certificate of the same CA", issue: func(h *harness) issue { return issue{signer: h.cfg.Identification} }, check: isErr(ErrSigner)},
		{name: "signed by another certificate of the same CA", issue: func(*harness) issue { return issue{signer: foreign} }, check: isErr(ErrSigner)},
		{name: "default pin is the platform's STS", cfg: func(c *ProviderConfig) { c.STSSigner = SignerPin{} },
			issue: func(*harness) issue { return issue{} }, check: isErr(ErrSigner)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 5*time.Hour)
			if tt.cfg != nil {
				tt.cfg(&h.cfg)
			}
			is := tt.issue(h)
			h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) { return is, nil })
			p := h.start(t)
			_, err := p.Token(context.Background())
			require.ErrorIs(t, err, ErrNoToken)
			require.False(t, errors.Is(err, bcp.ErrUnavailable), "a refused answer is not an outage")
			require.NotContains(t, err.Error(), testSSIN)
			tt.check(t, err)
		})
	}
}

// What was asked, within the skew, is accepted; so is a Success under another prefix bound to
// the SAML-P namespace, and a pin by subject.
func TestProvider_StrictAnswersAcceptTheLimits(t *testing.T) {
	h := newHarness(t, 5*time.Hour)
	h.cfg.RequestedLifetime = time.Hour
	h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
		return issue{lifetime: time.Hour + 5*time.Minute, statusValue: "samlp:Success"}, nil
	})
	_, err := h.start(t).Token(context.Background())
	require.NoError(t, err)

	h = newHarness(t, time.Hour)
	subject := `CN=eHealth STS, O=Pharmacie Test, C=BE`
	h.cfg.STSSigner = SignerPin{Subjects: []string{`OID.2.5.4.5=79021802145, ` + subject}}
	_, err = h.start(t).Token(context.Background())
	require.NoError(t, err, "pinned by its subject")
}

func TestSignerPin_Validate(t *testing.T) {
	require.NoError(t, SignerPin{}.Validate())
	require.NoError(t, PlatformSTS.Validate())
	require.NoError(t, SignerPin{Fingerprints: []string{"AB:cd:00112233445566778899aabbccddeeff00112233445566778899aabbccdd"}}.Validate())
	require.Error(t, SignerPin{Fingerprints: []string{"abc"}}.Validate())
	require.Error(t, SignerPin{Subjects: []string{" "}}.Validate())
}

// A redirect from the STS is an endpoint failure: the signed request goes nowhere else, least
// of all to a plain-http host.
func TestProvider_RedirectIsRefused(t *testing.T) {
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) }))
	t.Cleanup(plain.Close)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		h := newHarness(t, 5*time.Hour)
		h.sts.setAnswer(func(int64) (issue, http.HandlerFunc) {
			return issue{}, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, plain.URL+"/IAM/Saml11TokenService/v1", code)
			}
		})
		p := h.start(t)
		_, err := p.Token(context.Background())
		require.ErrorIs(t, err, ErrRedirect)
		require.ErrorIs(t, err, bcp.ErrUnavailable, "a redirect is an endpoint failure")
		var re *RedirectError
		require.ErrorAs(t, err, &re)
		require.Equal(t, code, re.StatusCode)
		require.Zero(t, plainHits.Load(), "nothing reached the plain-http host")
	}
}

type routerFunc func(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error

func (f routerFunc) Do(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error {
	return f(ctx, service, attempt)
}

// An http:// endpoint is refused: at construction for a FixedEndpoint, before sending for an
// endpoint a Router (a service list) hands out.
func TestProvider_PlainHTTPEndpointRefused(t *testing.T) {
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { plainHits.Add(1) }))
	t.Cleanup(plain.Close)

	h := newHarness(t, 5*time.Hour)
	for _, u := range []string{plain.URL, "HTTP://x/", "//host/path", "ftp://x/", "https://", ":"} {
		h.cfg.Router = FixedEndpoint(u)
		_, err := NewProvider(h.cfg)
		require.ErrorIs(t, err, ErrInsecureEndpoint, u)
		require.ErrorContains(t, err, "Router")
	}

	seen := make(chan error, 16)
	h.cfg.Router = routerFunc(func(ctx context.Context, service string, attempt func(context.Context, bcp.Endpoint) error) error {
		err := attempt(ctx, bcp.Endpoint{Service: service, URL: plain.URL + "/IAM/Saml11TokenService/v1"})
		seen <- err
		return err
	})
	p := h.start(t)
	_, err := p.Token(context.Background())
	require.ErrorIs(t, err, ErrInsecureEndpoint)
	require.Equal(t, bcp.Failure, bcp.DefaultClassifier{}.Classify(<-seen), "an endpoint failure: the Router moves on")
	require.Zero(t, plainHits.Load())
}
