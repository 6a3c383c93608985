package bcp_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/soap"
	"github.com/stretchr/testify/require"
)

var errTransport = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

type businessFault struct{ codes []string }

func (f businessFault) Error() string        { return fmt.Sprint("fault ", f.codes) }
func (f businessFault) FaultCodes() []string { return f.codes }

func TestDefaultClassifier_FollowsSwitchingSpec(t *testing.T) {
	urlErr := func(err error) error { return &url.Error{Op: "Post", URL: "https://x", Err: err} }
	tests := []struct {
		name string
		err  error
		want bcp.Outcome
	}{
		{"nil", nil, bcp.Success},
		{"connection refused", urlErr(errTransport), bcp.Failure},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), bcp.Failure},
		{"unexpected EOF", urlErr(io.ErrUnexpectedEOF), bcp.Failure},
		{"tls unknown authority", urlErr(x509.UnknownAuthorityError{}), bcp.Failure},
		{"bare x509 hostname error", x509.HostnameError{Host: "x"}, bcp.Failure},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), bcp.Failure},
		{"caller cancelled", urlErr(context.Canceled), bcp.Ignore},
		{"503 html page", &bcp.StatusError{StatusCode: 503, ContentType: "text/html"}, bcp.Failure},
		{"502", &bcp.StatusError{StatusCode: 502}, bcp.Failure},
		{"429", &bcp.StatusError{StatusCode: 429}, bcp.Failure},
		// Any HTTP error whose body is not SOAP is the endpoint's failure (switching rule 1):
		// a proxy's 403 or 404 page, a load balancer's redirect (issue 17 item 2).
		{"400 page", &bcp.StatusError{StatusCode: 400}, bcp.Failure},
		{"404 proxy page", fmt.Errorf("wrapped: %w", &bcp.StatusError{StatusCode: 404, ContentType: "text/html"}), bcp.Failure},
		{"403 proxy page", &bcp.StatusError{StatusCode: 403, ContentType: "text/html"}, bcp.Failure},
		{"302 redirect", &bcp.StatusError{StatusCode: 302}, bcp.Failure},
		{"garbled answer", fmt.Errorf("answer: %w", soap.ErrNotEnvelope), bcp.Failure},
		{"answer over the limits", &soap.LimitError{Limit: "bytes", Max: 1}, bcp.Failure},
		{"SOA-02001", &soap.Fault{Code: "soapenv:Server", Codes: []string{"SOA-02001"}}, bcp.Failure},
		{"SOA-02002 wrapped", fmt.Errorf("call: %w", &soap.Fault{Codes: []string{"X", "SOA-02002"}}), bcp.Failure},
		{"SOA-01001 (parity)", &soap.Fault{Codes: []string{"SOA-01001"}}, bcp.Failure},
		{"SOA-01002 (parity)", businessFault{[]string{"SOA-01002"}}, bcp.Failure},
		{"other fault", &soap.Fault{Codes: []string{"SOA-03001"}}, bcp.Ignore},
		{"fault without codes", &soap.Fault{Code: "soapenv:Client"}, bcp.Ignore},
		{"business error", errors.New("NO_IO_ERROR"), bcp.Ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, bcp.DefaultClassifier{}.Classify(tt.err))
		})
	}
}

func TestDefaultClassifier_FaultCodesAreConfigurable(t *testing.T) {
	c := bcp.DefaultClassifier{FaultCodes: []string{"SOA-02001", "SOA-02002"}}
	require.Equal(t, bcp.Ignore, c.Classify(&soap.Fault{Codes: []string{"SOA-01001"}}))
	require.Equal(t, bcp.Failure, c.Classify(&soap.Fault{Codes: []string{"SOA-02001"}}))
	none := bcp.DefaultClassifier{FaultCodes: []string{}}
	require.Equal(t, bcp.Ignore, none.Classify(&soap.Fault{Codes: []string{"SOA-02001"}}))
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	require.Equal(t, 120*time.Second, bcp.ParseRetryAfter("120", now))
	require.Equal(t, 90*time.Second, bcp.ParseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Zero(t, bcp.ParseRetryAfter("", now))
	require.Zero(t, bcp.ParseRetryAfter("soon", now))
	require.Zero(t, bcp.ParseRetryAfter("-5", now))
	require.Equal(t, 24*time.Hour, bcp.ParseRetryAfter("99999999", now))
	require.Equal(t, 24*time.Hour, bcp.ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now))
}

func TestOutcome_String(t *testing.T) {
	require.Equal(t, "success", bcp.Success.String())
	require.Equal(t, "failure", bcp.Failure.String())
	require.Equal(t, "ignore", bcp.Ignore.String())
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	for _, seed := range []string{"", "0", "120", "-1", "99999999999999999999", "9223372036854775807",
		"Mon, 23 Nov 2026 08:01:30 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "soon", " 5 "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := bcp.ParseRetryAfter(v, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside 0..24h", v, d)
		}
	})
}
