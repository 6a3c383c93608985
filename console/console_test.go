package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/console"
	"github.com/ehgate/ehgate/internal/clienttest"
	"github.com/ehgate/ehgate/platformtest"
)

const ins = connector.ServiceInsurability

// byCookie authorises the operator named by the "operator" cookie when it is alice.
func byCookie(r *http.Request) (string, bool) {
	ck, err := r.Cookie("operator")
	if err != nil {
		return "", false
	}
	return ck.Value, ck.Value == "alice"
}

type env struct {
	p   *platformtest.Platform
	c   *connector.Client
	srv *httptest.Server
	url string // the console's page
}

func newEnv(t *testing.T, cfg console.Config) *env {
	t.Helper()
	p, id := clienttest.Platform(t)
	c := clienttest.Client(t, p, id)
	h, err := console.New(c, cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{p: p, c: c, srv: srv, url: srv.URL + "/console/"}
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) get(t *testing.T, path, operator string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	require.NoError(t, err)
	if operator != "" {
		req.AddCookie(&http.Cookie{Name: "operator", Value: operator})
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func (e *env) post(t *testing.T, path, operator string, form url.Values, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	if operator != "" {
		req.AddCookie(&http.Cookie{Name: "operator", Value: operator})
	}
	resp, err := noRedirect().Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	require.NotNil(t, m, "the page has a CSRF token")
	return m[1]
}

// TestConsole_ReadOnlyWithoutHook: without an Authorize hook the page shows the modes and no
// action, and every action is refused.
func TestConsole_ReadOnlyWithoutHook(t *testing.T) {
	e := newEnv(t, console.Config{})
	page := e.get(t, "", "alice")
	require.Contains(t, page, `data-service="insurability:v2"`)
	require.Contains(t, page, "read-only")
	require.NotContains(t, page, `action="fallback/activate"`)
	resp := e.post(t, "fallback/activate", "alice", url.Values{"service": {ins}, "reason": {"x"}, "csrf": {"anything"}}, nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	m, _ := e.c.Mode(ins)
	require.Equal(t, connector.ModeNormal, m)
}

// TestConsole_ActionsNeedAuthorisationReasonAndCSRF checks each guard of an action, then an
// authorised operator's fallback and its end, recorded with who and when.
func TestConsole_ActionsNeedAuthorisationReasonAndCSRF(t *testing.T) {
	e := newEnv(t, console.Config{Authorize: byCookie})
	token := csrfOf(t, e.get(t, "", "alice"))
	require.NotContains(t, e.get(t, "", "mallory"), `name="csrf"`, "no token for an unauthorised operator")
	form := func(reason, csrf string) url.Values {
		return url.Values{"service": {ins}, "reason": {reason}, "csrf": {csrf}}
	}
	for _, tc := range []struct {
		name     string
		operator string
		form     url.Values
		header   http.Header
		status   int
	}{
		{"no operator", "", form("maintenance", token), nil, http.StatusForbidden},
		{"unauthorised operator with a stolen token", "mallory", form("maintenance", token), nil, http.StatusForbidden},
		{"no csrf token", "alice", form("maintenance", ""), nil, http.StatusForbidden},
		{"wrong csrf token", "alice", form("maintenance", token+"x"), nil, http.StatusForbidden},
		{"cross-site", "alice", form("maintenance", token), http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"other origin", "alice", form("maintenance", token), http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"no reason", "alice", form("  ", token), nil, http.StatusBadRequest},
		{"unknown service", "alice", url.Values{"service": {"nope:v1"}, "reason": {"x"}, "csrf": {token}}, nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.post(t, "fallback/activate", tc.operator, tc.form, tc.header)
			require.Equal(t, tc.status, resp.StatusCode)
			m, _ := e.c.Mode(ins)
			require.Equal(t, connector.ModeNormal, m)
		})
	}

	resp := e.post(t, "fallback/activate", "alice", form("planned maintenance", token), nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "../", resp.Header.Get("Location"))
	m, cause := e.c.Mode(ins)
	require.Equal(t, connector.ModeFallback, m)
	require.Contains(t, cause, "planned maintenance (by alice)")

	var v console.View
	require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &v))
	require.Len(t, v.Actions, 1)
	require.Equal(t, "alice", v.Actions[0].Operator)
	require.Equal(t, "activate fallback", v.Actions[0].Action)
	require.Equal(t, "planned maintenance", v.Actions[0].Reason)
	require.False(t, v.Actions[0].At.IsZero())

	resp = e.post(t, "fallback/end", "alice", url.Values{"service": {ins}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	clienttest.Wait(t, "back to normal", func() bool { m, _ := e.c.Mode(ins); return m == connector.ModeNormal })
}

// TestConsole_JSONStatusWithoutPersonalData: the JSON endpoint shows modes, endpoints with
// their breaker and last error, the token and the freshness; no SSIN.
func TestConsole_JSONStatusWithoutPersonalData(t *testing.T) {
	e := newEnv(t, console.Config{Authorize: byCookie})
	ctx := context.Background()
	pts := clienttest.Patients(e.p, 2)
	for _, pt := range pts {
		_, err := e.c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pt.SSIN})
		require.NoError(t, err)
	}
	e.p.Site("ehealth").Inject(platformtest.ServiceInsurability, platformtest.Fault{Kind: platformtest.FaultHTTPStatus, Status: 503})
	_, err := e.c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)

	raw := e.get(t, "status.json", "")
	for _, pt := range pts {
		require.NotContains(t, raw, pt.SSIN)
	}
	var v console.View
	require.NoError(t, json.Unmarshal([]byte(raw), &v))
	var svc *console.ServiceView
	for i := range v.Services {
		if v.Services[i].Name == ins {
			svc = &v.Services[i]
		}
	}
	require.NotNil(t, svc)
	require.Equal(t, "failed-over", svc.Mode)
	require.NotEmpty(t, svc.Cause)
	require.Len(t, svc.Endpoints, 2)
	require.Equal(t, "closed", svc.Endpoints[0].Breaker)
	require.Contains(t, svc.Endpoints[0].LastError, "503")
	require.Empty(t, svc.Endpoints[1].LastError)
	require.True(t, v.Token.Valid)
	require.NotEmpty(t, v.Token.ExpiresIn)
	require.Equal(t, "network", v.List.Source)
	require.NotEqual(t, "never", v.List.Age)
	require.True(t, v.Feed.Configured)
	page := e.get(t, "", "alice")
	for _, pt := range pts {
		require.NotContains(t, page, pt.SSIN)
	}
	require.Contains(t, page, "503")
}

// TestConsole_DeadLettersRequeuedAndDiscarded: two writes rejected by the platform become dead
// letters, shown without their payload; one is requeued and delivered, the other discarded.
func TestConsole_DeadLettersRequeuedAndDiscarded(t *testing.T) {
	e := newEnv(t, console.Config{Authorize: byCookie})
	ctx := context.Background()
	const svc = connector.ServiceEHealthBox
	reject := true
	e.p.SetWriteValidator(func(w platformtest.Write) error {
		if reject {
			return errors.New("refused by the test")
		}
		return nil
	})
	require.NoError(t, e.c.ActivateFallback(svc, "queue"))
	for _, payload := range []string{"secret-claim-A", "secret-claim-B"} {
		r, err := e.c.SendMessage(ctx, testMessage(payload))
		require.NoError(t, err)
		require.True(t, r.Queued)
	}
	require.NoError(t, e.c.EndFallback(svc))
	clienttest.Wait(t, "two dead letters", func() bool { return e.c.Status().Outbox.DeadLetters == 2 })
	e.p.SetWriteValidator(nil)

	page := e.get(t, "", "alice")
	require.NotContains(t, page, "secret-claim")
	require.NotContains(t, page, "refused by the test", "the platform's message may name the patient")
	var v console.View
	require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &v))
	require.Len(t, v.DeadLetters, 2)
	token := csrfOf(t, page)
	seqA, seqB := v.DeadLetters[0].Seq, v.DeadLetters[1].Seq

	resp := e.post(t, "deadletters/requeue", "alice", url.Values{"seq": {jsonNum(seqA)}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	clienttest.Wait(t, "requeued write delivered", func() bool { return len(e.p.Writes()) == 1 })
	resp = e.post(t, "deadletters/discard", "alice", url.Values{"seq": {jsonNum(seqB)}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, 0, e.c.Status().Outbox.DeadLetters)
	require.Len(t, e.p.Writes(), 1)

	require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &v))
	require.Len(t, v.Actions, 2)
	require.Equal(t, "discard", v.Actions[0].Action)
	require.Equal(t, "requeue", v.Actions[1].Action)
	require.Equal(t, "ok", v.Actions[1].Result)
}

func jsonNum(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestConsole_DrillStartedAndReported: an operator starts a drill of one second; its report
// (counts) appears once it ended.
func TestConsole_DrillStartedAndReported(t *testing.T) {
	e := newEnv(t, console.Config{Authorize: byCookie})
	ctx := context.Background()
	pts := clienttest.Patients(e.p, 1)
	_, err := e.c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	token := csrfOf(t, e.get(t, "", "alice"))
	resp := e.post(t, "drill", "alice", url.Values{"service": {ins}, "seconds": {"0"}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp = e.post(t, "drill", "alice", url.Values{"service": {ins}, "seconds": {"1"}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	clienttest.Wait(t, "drill running", func() bool { m, _ := e.c.Mode(ins); return m == connector.ModeFallback })
	res, err := e.c.Insurability(ctx, connector.InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.Equal(t, connector.SourceCache, res.Source)
	var v console.View
	clienttest.Wait(t, "drill report", func() bool {
		require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &v))
		return v.Drill.Last != nil
	})
	require.False(t, v.Drill.Running)
	require.Equal(t, []string{ins}, v.Drill.Last.Services)
	require.Equal(t, 1, v.Drill.Last.Calls)
	require.Equal(t, 1, v.Drill.Last.Answered)
	require.Contains(t, e.get(t, "", ""), `id="drill-report"`)
}

// testMessage is an eHealthBox message whose document is content.
func testMessage(content string) connector.EHealthBoxMessage {
	return connector.EHealthBoxMessage{Title: "claim", Content: []byte(content),
		Recipients: []connector.EHealthBoxAddress{{ID: "10082533004", Type: "NIHII", Quality: "DOCTOR"}}}
}
