package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/console"
	"github.com/ehgate/ehgate/internal/clienttest"
)

// TestConsole_ActionLogSurvivesARestart: the operator's actions (fallback activated with a
// reason, then ended) are in the client's operator log, a sealed record of its store: after
// the client is closed and opened again on the same store, a new console shows them, with
// who, when and why, on the page and in the JSON.
func TestConsole_ActionLogSurvivesARestart(t *testing.T) {
	p, id := clienttest.Platform(t)
	cfg := clienttest.Config(t, p, id)
	serve := func(c *connector.Client) *env {
		h, err := console.New(c, console.Config{Authorize: byCookie})
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("/console/", http.StripPrefix("/console", h))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return &env{p: p, c: c, srv: srv, url: srv.URL + "/console/"}
	}
	open := func() *connector.Client {
		c, err := connector.New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		clienttest.Wait(t, "service list loaded", func() bool { return c.Status().List.Source != "none" })
		return c
	}

	c := open()
	e := serve(c)
	token := csrfOf(t, e.get(t, "", "alice"))
	resp := e.post(t, "fallback/activate", "alice", url.Values{"service": {ins}, "reason": {"network works at the pharmacy"}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp = e.post(t, "fallback/end", "alice", url.Values{"service": {ins}, "csrf": {token}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var before console.View
	require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &before))
	require.Len(t, before.Actions, 2)
	require.NoError(t, c.Close())

	e = serve(open())
	var after console.View
	require.NoError(t, json.Unmarshal([]byte(e.get(t, "status.json", "")), &after))
	require.Empty(t, after.ActionsError)
	require.Len(t, after.Actions, 2, "both actions are still there after the restart")
	require.Equal(t, "end fallback", after.Actions[0].Action)
	require.Equal(t, "activate fallback", after.Actions[1].Action)
	for i, a := range after.Actions {
		require.Equal(t, "alice", a.Operator)
		require.Equal(t, ins, a.Target)
		require.Equal(t, "ok", a.Result)
		require.False(t, a.Unsaved)
		require.True(t, a.At.Equal(before.Actions[i].At), "recorded when it was done, not when read back")
	}
	require.Equal(t, "network works at the pharmacy", after.Actions[1].Reason)
	page := e.get(t, "", "")
	require.Contains(t, page, "network works at the pharmacy")
	require.Contains(t, page, `<tr class="action">`)
}
