package console

import (
	"context"
	"sort"
	"time"

	"github.com/ehgate/ehgate/connector"
)

// View is what the page and the JSON endpoint show: the client's Status reduced to what an
// operator needs, the dead letters without their payloads, the drill and the actions taken.
// It holds no personal data.
type View struct {
	At          time.Time
	Services    []ServiceView
	Token       TokenView
	Outbox      OutboxView
	DeadLetters []DeadLetterView
	List        SourceView
	Feed        SourceView
	Drill       DrillView
	Actions     []Action // newest first, at most Config.MaxActions
	// ActionsError says why the client's operator log could not be read ("" = it was).
	ActionsError string `json:",omitempty"`
}

// ServiceView is one service: its mode and why, its endpoints.
type ServiceView struct {
	Name           string
	Mode           string
	Cause          string
	Since          time.Time
	Operator       string // the reason an operator gave ("" = none)
	Drill          bool
	FeedStatus     string
	Serving        string
	Regularisation int
	Endpoints      []EndpointView
}

// EndpointView is one endpoint of a service.
type EndpointView struct {
	URL         string
	Order       int
	Site        string
	Active      bool
	Breaker     string
	HeldUntil   time.Time `json:",omitzero"`
	LastError   string    `json:",omitempty"`
	LastErrorAt time.Time `json:",omitzero"`
}

// TokenView is the STS token.
type TokenView struct {
	Valid        bool
	NotOnOrAfter time.Time `json:",omitzero"`
	ExpiresIn    string    `json:",omitempty"`
	Requests     int64
	Failures     int64
}

// OutboxView is the queue of writes.
type OutboxView struct {
	Pending     int
	OldestAge   string
	DeadLetters int
	Replaying   bool
}

// DeadLetterView is one write the platform rejected: which, when, how big; never its payload
// or the platform's message (they may name the patient).
type DeadLetterView struct {
	Seq     uint64
	Service string
	DeadAt  time.Time
	Bytes   int
}

// SourceView is the freshness of the service list or of the status feed.
type SourceView struct {
	Configured  bool
	Source      string    `json:",omitempty"` // service list only
	Issued      time.Time `json:",omitzero"`  // service list only
	LastSuccess time.Time `json:",omitzero"`
	Age         string    // since the last success; "never"
	LastError   string    `json:",omitempty"`
}

// DrillView is the drill running, or the last one's report.
type DrillView struct {
	Running  bool
	Operator string    `json:",omitempty"`
	Started  time.Time `json:",omitzero"`
	Services []string  `json:",omitempty"`
	Last     *DrillSummary
	Error    string `json:",omitempty"`
}

// DrillSummary is a drill's report in counts (the report's pseudonyms are left out).
type DrillSummary struct {
	Services     []string
	Started      time.Time
	Ended        time.Time
	Calls        int
	Answered     int
	Matches      int
	Mismatches   int
	Misses       int
	ShadowErrors int
	// MismatchFields counts, per answer field, the store answers that differed in it.
	MismatchFields map[string]int `json:",omitempty"`
}

// Action is one operator action, as recorded.
type Action struct {
	At       time.Time
	Operator string
	Action   string // "activate fallback", "end fallback", "start drill", "requeue", "discard"
	Target   string // service(s) or dead letter
	Reason   string `json:",omitempty"`
	Result   string // "ok" or the error
	// Unsaved: the client's operator log could not keep it (no local store); it is lost when
	// the process stops.
	Unsaved bool `json:",omitempty"`
}

func summarize(r connector.DrillReport) *DrillSummary {
	s := &DrillSummary{Services: r.Services, Started: r.Started, Ended: r.Ended, Calls: r.Calls, Answered: r.Answered,
		Matches: r.Matches, Mismatches: len(r.Mismatches), Misses: len(r.Misses), ShadowErrors: r.ShadowErrors}
	for _, m := range r.Mismatches {
		for _, f := range m.Fields {
			if s.MismatchFields == nil {
				s.MismatchFields = map[string]int{}
			}
			s.MismatchFields[f]++
		}
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String()
}

// view builds the View from the client's Status and the console's own records.
func (h *Console) view(ctx context.Context) View {
	st := h.c.Status()
	v := View{At: st.At}
	for _, s := range st.Services {
		sv := ServiceView{Name: s.Name, Mode: s.Mode.String(), Cause: s.Cause, Since: s.Since, Operator: s.Operator,
			Drill: s.Drill, FeedStatus: s.FeedStatus, Serving: s.Serving, Regularisation: s.Regularisation}
		for _, e := range s.Endpoints {
			sv.Endpoints = append(sv.Endpoints, EndpointView{URL: e.URL, Order: e.Order, Site: e.Site, Active: e.Active,
				Breaker: e.Breaker, HeldUntil: e.HeldUntil, LastError: e.LastError, LastErrorAt: e.LastErrorAt})
		}
		v.Services = append(v.Services, sv)
	}
	v.Token = TokenView{Valid: st.Token.Valid, NotOnOrAfter: st.Token.NotOnOrAfter, Requests: st.Token.Requests, Failures: st.Token.Failures}
	if st.Token.Valid {
		v.Token.ExpiresIn = st.Token.NotOnOrAfter.Sub(st.At).Round(time.Second).String()
	}
	v.Outbox = OutboxView{Pending: st.Outbox.Pending, OldestAge: st.Outbox.OldestAge.Round(time.Second).String(),
		DeadLetters: st.Outbox.DeadLetters, Replaying: st.Outbox.Replaying}
	if st.Outbox.DeadLetters > 0 {
		if dls, err := h.c.DeadLetters(ctx); err == nil {
			for _, d := range dls {
				v.DeadLetters = append(v.DeadLetters, DeadLetterView{Seq: d.Seq, Service: d.Service, DeadAt: d.DeadAt, Bytes: len(d.Payload)})
			}
			sort.Slice(v.DeadLetters, func(i, j int) bool { return v.DeadLetters[i].Seq < v.DeadLetters[j].Seq })
		}
	}
	v.List = SourceView{Configured: true, Source: st.List.Source, Issued: st.List.IssueInstant, LastSuccess: st.List.LastSuccess,
		Age: ago(st.At, st.List.LastSuccess), LastError: st.List.LastError}
	v.Feed = SourceView{Configured: st.Feed.URL != "", LastSuccess: st.Feed.LastSuccess, Age: ago(st.At, st.Feed.LastSuccess),
		LastError: st.Feed.LastError}
	h.mu.Lock()
	v.Drill = h.drill
	if h.drill.Services != nil {
		v.Drill.Services = append([]string(nil), h.drill.Services...)
	}
	v.Actions = append(v.Actions, h.unsaved...)
	h.mu.Unlock()
	saved, err := h.c.OperatorActions(ctx)
	if err != nil && len(v.Actions) == 0 {
		v.ActionsError = err.Error()
	}
	for _, a := range saved {
		v.Actions = append(v.Actions, Action{At: a.At, Operator: a.Operator, Action: a.Action, Target: a.Target, Reason: a.Reason, Result: a.Result})
	}
	sort.SliceStable(v.Actions, func(i, j int) bool { return v.Actions[i].At.After(v.Actions[j].At) })
	if len(v.Actions) > h.cfg.MaxActions {
		v.Actions = v.Actions[:h.cfg.MaxActions]
	}
	return v
}
