package soap_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// ReadRawAnswer reads the bytes of every 2xx answer as PostRaw does: the same kind of error,
// or the same Body in the same scope.
func TestReadRawAnswer_ReadsAsPostRaw(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	c := soap.NewClient(srv.Client(), soap.ClientConfig{})
	n := 0
	for _, tc := range rawAnswerCases {
		if tc.status != 200 {
			continue
		}
		n++
		t.Run(tc.name, func(t *testing.T) {
			body = tc.body
			want, werr := c.PostRaw(context.Background(), srv.URL, "urn:a", []byte("<x/>"))
			got, gerr := soap.ReadRawAnswer([]byte(tc.body), soap.Limits{})
			require.Equal(t, kind(werr), kind(gerr), "PostRaw: %v; ReadRawAnswer: %v", werr, gerr)
			if werr != nil {
				return
			}
			require.Equal(t, string(want.Body), string(got.Body))
			require.Equal(t, want.Scope, got.Scope)
			require.Equal(t, tc.body, string(got.Raw))
			require.Zero(t, got.StatusCode)
		})
	}
	require.Greater(t, n, 20)
	_, err := soap.ReadRawAnswer([]byte(rawAnswerCases[0].body), soap.Limits{MaxDepth: -1})
	require.Error(t, err, "limits are validated")
}

// An answer over Limits.MaxBytes is refused by PostRaw as by Post, even when its first
// MaxBytes+1 bytes are a whole envelope (the exchange reads one byte beyond the limit).
func TestPostRaw_AnswerOverTheByteLimit(t *testing.T) {
	ok := `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><a/></S:Body></S:Envelope>`
	for _, answer := range []string{ok + strings.Repeat(" ", 8000), ok + strings.Repeat(" ", 1024-len(ok)+1)} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, answer)
		}))
		c := soap.NewClient(srv.Client(), soap.ClientConfig{Limits: soap.Limits{MaxBytes: 1024}})
		_, werr := c.Post(context.Background(), srv.URL, "a", []byte("<x/>"))
		_, gerr := c.PostRaw(context.Background(), srv.URL, "a", []byte("<x/>"))
		require.Equal(t, "limit", kind(werr))
		require.Equal(t, "limit", kind(gerr))
		require.Equal(t, werr.Error(), gerr.Error())
		_, err := soap.ReadRawAnswer([]byte(answer), soap.Limits{MaxBytes: 1024})
		require.Equal(t, "limit", kind(err))
		srv.Close()
	}
	_, err := soap.ReadRawAnswer([]byte(ok+strings.Repeat(" ", 1024-len(ok))), soap.Limits{MaxBytes: 1024})
	require.NoError(t, err, "at the limit")
}
