package console

import (
	"embed"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed page.html
var pageFS embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ms":       func(d time.Duration) int64 { return d.Milliseconds() },
	"contains": strings.Contains,
}).ParseFS(pageFS, "page.html"))

// pageData is the page: the view, and what the operator may do.
type pageData struct {
	View
	Operator   string
	Authorised bool
	CSRF       string
	Refresh    time.Duration
	MaxDrill   int
}

func (h *Console) data(r *http.Request) pageData {
	operator, ok := h.operator(r)
	d := pageData{View: h.view(r.Context()), Operator: operator, Authorised: ok, Refresh: h.cfg.Refresh,
		MaxDrill: int(h.cfg.MaxDrill / time.Second)}
	if ok {
		d.CSRF = h.csrfToken(operator)
	}
	return d
}

func (h *Console) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	_ = pageTemplate.ExecuteTemplate(w, "page", h.data(r))
}

func (h *Console) fragment(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.ExecuteTemplate(w, "status", h.data(r))
}
