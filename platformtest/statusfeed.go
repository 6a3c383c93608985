package platformtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Component statuses of the status feed (docs/wire/statusfeed.md). Any other
// string may be set too, to test how a client treats unknown statuses.
const (
	StatusOperational         = "Operational"
	StatusDegradedPerformance = "Degraded Performance"
	StatusPartialOutage       = "Partial Outage"
	StatusMajorOutage         = "Major Outage"
)

// Component is one entry of the status feed.
type Component struct {
	ID              int    `json:"id"`
	NameNL          string `json:"name_nl"`
	NameFR          string `json:"name_fr"`
	GroupNameNL     string `json:"group_name_nl"`
	ComponentNameNL string `json:"component_name_nl"`
	StatusName      string `json:"status_name"`
	Description     string `json:"description"`
}

type statusFeed struct {
	mu    sync.Mutex
	comps []Component
	bare  bool // serve a bare array instead of {"data": [...]}
}

func newStatusFeed() *statusFeed {
	f := &statusFeed{}
	for i, c := range []struct{ nl, fr, group string }{
		{"eHealth STS", "eHealth STS", "eHealth basisdiensten"},
		{"ETK Depot", "ETK Depot", "eHealth basisdiensten"},
		{"Insurability", "Assurabilité", "MyCareNet"},
		{"Generic Insurability", "Assurabilité générique", "MyCareNet"},
		{"eHealthBox", "eHealthBox", "eHealth basisdiensten"},
	} {
		f.comps = append(f.comps, Component{ID: i + 1, NameNL: c.nl, NameFR: c.fr, GroupNameNL: c.group, ComponentNameNL: c.nl, StatusName: StatusOperational})
	}
	return f
}

// SetComponentStatus sets the status_name of the feed's component named
// component (name_nl, case-insensitive), adding the component if the feed
// has none of that name.
func (p *Platform) SetComponentStatus(component, status string) {
	f := p.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.comps {
		if strings.EqualFold(f.comps[i].NameNL, component) {
			f.comps[i].StatusName = status
			return
		}
	}
	f.comps = append(f.comps, Component{ID: len(f.comps) + 1, NameNL: component, NameFR: component, ComponentNameNL: component, StatusName: status})
}

// StatusFeed returns the feed's components.
func (p *Platform) StatusFeed() []Component {
	p.feed.mu.Lock()
	defer p.feed.mu.Unlock()
	return append([]Component(nil), p.feed.comps...)
}

// SetStatusFeedBareArray makes the feed serve a bare JSON array (true) or
// an object whose data field is the array (false, the default); clients
// must accept both.
func (p *Platform) SetStatusFeedBareArray(bare bool) {
	p.feed.mu.Lock()
	p.feed.bare = bare
	p.feed.mu.Unlock()
}

func (p *Platform) serveStatusFeed(x *exchange) reply {
	if x.r.Method != http.MethodGet && x.r.Method != http.MethodHead {
		return reply{status: http.StatusMethodNotAllowed, contentType: "text/plain; charset=utf-8", body: []byte("method not allowed\n"), outcome: OutcomeBadRequest}
	}
	f := p.feed
	f.mu.Lock()
	var v any = map[string]any{"data": f.comps}
	if f.bare {
		v = f.comps
	}
	b, err := json.Marshal(v)
	f.mu.Unlock()
	if err != nil {
		return reply{status: http.StatusInternalServerError, outcome: OutcomeBadRequest}
	}
	return reply{status: http.StatusOK, contentType: "application/json", body: b, outcome: OutcomeOK}
}
