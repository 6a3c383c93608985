package soap_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// answer returns a handler answering status with the content type and body, counting hits.
func answer(hits *atomic.Int64, status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestClient_Post_StatusContentAndBodyRules(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(answer(&elsewhere, 200, "text/xml", minimal))
	defer other.Close()
	html := "<html><body><h1>Forbidden</h1></body></html>"
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		handler func(*atomic.Int64) http.HandlerFunc
		check   func(t *testing.T, a *soap.Answer, err error)
	}{
		{"200 envelope", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 200, "text/xml; charset=utf-8", minimal) },
			func(t *testing.T, a *soap.Answer, err error) {
				require.NoError(t, err)
				require.Equal(t, "r", a.Body.Tag)
				require.Equal(t, minimal, string(a.Raw))
				require.Equal(t, 200, a.StatusCode)
			}},
		{"500 fault", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 500, "text/xml", platformFault) },
			func(t *testing.T, _ *soap.Answer, err error) {
				var f *soap.Fault
				require.ErrorAs(t, err, &f)
				require.Equal(t, []string{"SOA-02001", "SOA-02002"}, f.FaultCodes())
			}},
		{"200 fault", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 200, "text/xml", platformFault) },
			func(t *testing.T, _ *soap.Answer, err error) {
				var f *soap.Fault
				require.ErrorAs(t, err, &f)
			}},
		{"502 html page with Retry-After", func(h *atomic.Int64) http.HandlerFunc {
			return answer(h, 502, "text/html", html, "Retry-After", "7")
		}, func(t *testing.T, _ *soap.Answer, err error) {
			var se *soap.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 502, se.StatusCode)
			require.Equal(t, 7*time.Second, se.RetryAfter)
			require.Equal(t, "text/html", se.ContentType)
		}},
		{"403 proxy page", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 403, "text/html", html) },
			func(t *testing.T, _ *soap.Answer, err error) {
				var se *soap.StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, 403, se.StatusCode)
			}},
		{"500 envelope that is not a fault", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 500, "text/xml", minimal) },
			func(t *testing.T, _ *soap.Answer, err error) {
				var se *soap.StatusError
				require.ErrorAs(t, err, &se)
			}},
		{"302 to another host is not followed", func(h *atomic.Int64) http.HandlerFunc {
			return answer(h, 302, "text/html", html, "Location", other.URL)
		}, func(t *testing.T, _ *soap.Answer, err error) {
			var se *soap.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 302, se.StatusCode)
			require.Contains(t, err.Error(), "redirect not followed")
		}},
		{"307 re-post is not followed", func(h *atomic.Int64) http.HandlerFunc {
			return answer(h, 307, "", "", "Location", other.URL)
		}, func(t *testing.T, _ *soap.Answer, err error) {
			var se *soap.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 307, se.StatusCode)
		}},
		{"308 with a SOAP fault body is still a redirect", func(h *atomic.Int64) http.HandlerFunc {
			return answer(h, 308, "text/xml", platformFault, "Location", other.URL)
		}, func(t *testing.T, _ *soap.Answer, err error) {
			var se *soap.StatusError
			require.ErrorAs(t, err, &se)
			var f *soap.Fault
			require.False(t, errors.As(err, &f))
		}},
		{"200 html page is garbled", func(h *atomic.Int64) http.HandlerFunc { return answer(h, 200, "text/html", html) },
			func(t *testing.T, _ *soap.Answer, err error) {
				require.ErrorIs(t, err, soap.ErrNotEnvelope)
				require.True(t, soap.IsGarbled(err))
			}},
		{"200 over the byte limit", func(h *atomic.Int64) http.HandlerFunc {
			return answer(h, 200, "text/xml", minimal+strings.Repeat(" ", 4096))
		}, func(t *testing.T, _ *soap.Answer, err error) {
			require.ErrorIs(t, err, soap.ErrLimit)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(tt.handler(&hits))
			defer srv.Close()
			// A vendor's client that follows every redirect (nil CheckRedirect).
			c := soap.NewClient(&http.Client{}, soap.ClientConfig{Limits: soap.Limits{MaxBytes: 4096}, Now: func() time.Time { return now }})
			a, err := c.Post(context.Background(), srv.URL, "urn:action", []byte(minimal))
			tt.check(t, a, err)
			require.EqualValues(t, 1, hits.Load())
			require.Zero(t, elsewhere.Load(), "no redirect is followed")
		})
	}
}

// The answer's body is drained before closing, so the next call reuses the connection, even
// when the body was not read (a redirect) or read only in part (over the limit).
func TestClient_Post_DrainsTheBodyForReuse(t *testing.T) {
	for _, h := range []http.HandlerFunc{
		answer(new(atomic.Int64), 302, "text/html", strings.Repeat("x", 8000), "Location", "/elsewhere"),
		answer(new(atomic.Int64), 200, "text/xml", minimal+strings.Repeat(" ", 8000)),
		answer(new(atomic.Int64), 502, "text/html", strings.Repeat("x", 8000)),
	} {
		srv := httptest.NewServer(h)
		c := soap.NewClient(srv.Client(), soap.ClientConfig{Limits: soap.Limits{MaxBytes: 1024}})
		var reused []bool
		for range 3 {
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) },
			})
			_, err := c.Post(ctx, srv.URL, "a", []byte(minimal))
			require.Error(t, err)
		}
		require.Equal(t, []bool{false, true, true}, reused)
		srv.Close()
	}
}

// The vendor's client is not modified: it keeps its own redirect policy for its own calls.
func TestWithoutRedirects_CopiesTheClient(t *testing.T) {
	check := func(*http.Request, []*http.Request) error { return errors.New("vendor policy") }
	hc := &http.Client{Timeout: time.Second, CheckRedirect: check}
	c := soap.WithoutRedirects(hc)
	require.Equal(t, time.Second, c.Timeout)
	require.Equal(t, http.ErrUseLastResponse, c.CheckRedirect(nil, nil))
	require.EqualError(t, hc.CheckRedirect(nil, nil), "vendor policy")
	require.NotNil(t, soap.WithoutRedirects(nil).CheckRedirect)
}
