package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/console"
	"github.com/ehgate/ehgate/metrics"
)

// admin is the demo's admin server (-console): the operator console and /metrics.
type admin struct {
	ln      net.Listener
	srv     *http.Server
	metrics *metrics.Collector
}

// listenAdmin listens on addr before the client exists, so that a bad address fails first.
func listenAdmin(addr string) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &admin{ln: ln, metrics: metrics.New()}, nil
}

// fromLoopback authorises requests from this machine as the operator "demo": the demo's
// server is for a local look, a vendor plugs in its own single sign-on.
func fromLoopback(r *http.Request) (string, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "", false
	}
	ip := net.ParseIP(host)
	return "demo", ip != nil && ip.IsLoopback()
}

// serve mounts the console of c under /console/ and the metrics under /metrics, and returns
// their URLs.
func (a *admin) serve(c *connector.Client) (consoleURL, metricsURL string, err error) {
	a.metrics.Attach(c)
	reg := prometheus.NewRegistry()
	if err := reg.Register(a.metrics); err != nil {
		return "", "", err
	}
	h, err := console.New(c, console.Config{Authorize: fromLoopback, Refresh: time.Second})
	if err != nil {
		return "", "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", h))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the morning goes on without its console
		}
	}()
	base := "http://" + a.ln.Addr().String()
	return base + "/console/", base + "/metrics", nil
}

// close stops the server (before the client closes).
func (a *admin) close() {
	if a.srv == nil {
		_ = a.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}
