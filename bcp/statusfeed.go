package bcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds of the status feed. The real feed holds a few dozen components.
const (
	MaxStatusFeedBytes   = 1 << 20
	maxFeedComponents    = 5_000
	maxFeedStringLength  = 4 << 10
	maxFeedJSONNestLevel = 16
)

// ErrInvalidFeed is matched by every error of ParseStatusFeed.
var ErrInvalidFeed = errors.New("bcp: invalid status feed")

// FeedError says what is wrong with a status feed: the component's position (0-based, -1 for
// the document itself), the field and why.
type FeedError struct {
	Index  int
	Field  string
	Reason string
}

// Error says which component and field of the feed were wrong, and why.
func (e *FeedError) Error() string {
	if e.Index < 0 {
		return "bcp: status feed: " + e.Reason
	}
	return fmt.Sprintf("bcp: status feed: component %d: %s: %s", e.Index, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidFeed.
func (e *FeedError) Unwrap() error { return ErrInvalidFeed }

// ComponentStatus is a component's state on the status page. Anything the page says that is
// not one of the four known values is ComponentUnknown, which is not an outage.
type ComponentStatus int

// The component statuses of the status page (docs/wire/statusfeed.md). Only
// ComponentMajorOutage is acted on (Reading.MajorOutage; the connector moves
// the service into fallback mode at once); the others are informative.
const (
	// ComponentUnknown is any status_name other than the four below (or none);
	// it is not an outage.
	ComponentUnknown ComponentStatus = iota
	// ComponentOperational is "Operational".
	ComponentOperational
	// ComponentDegradedPerformance is "Degraded Performance".
	ComponentDegradedPerformance
	// ComponentPartialOutage is "Partial Outage".
	ComponentPartialOutage
	// ComponentMajorOutage is "Major Outage": see Reading.MajorOutage.
	ComponentMajorOutage
)

// String returns the status page's spelling ("Major Outage"), or "Unknown".
func (s ComponentStatus) String() string {
	switch s {
	case ComponentUnknown:
		return "Unknown"
	case ComponentOperational:
		return "Operational"
	case ComponentDegradedPerformance:
		return "Degraded Performance"
	case ComponentPartialOutage:
		return "Partial Outage"
	case ComponentMajorOutage:
		return "Major Outage"
	default:
		return "ComponentStatus(" + strconv.Itoa(int(s)) + ")"
	}
}

// severity orders known statuses; unknown ranks below operational so that it never hides
// what known components say nor counts as an outage.
func (s ComponentStatus) severity() int {
	switch s {
	case ComponentOperational:
		return 1
	case ComponentDegradedPerformance:
		return 2
	case ComponentPartialOutage:
		return 3
	case ComponentMajorOutage:
		return 4
	default:
		return 0
	}
}

// ParseComponentStatus maps a status_name to its ComponentStatus, ignoring case and
// surrounding space; anything else is ComponentUnknown.
func ParseComponentStatus(name string) ComponentStatus {
	switch strings.ToLower(strings.Join(strings.Fields(name), " ")) {
	case "operational":
		return ComponentOperational
	case "degraded performance":
		return ComponentDegradedPerformance
	case "partial outage":
		return ComponentPartialOutage
	case "major outage":
		return ComponentMajorOutage
	default:
		return ComponentUnknown
	}
}

// Component is one entry of the status feed.
type Component struct {
	ID          string // "id" (a JSON number or string, kept as text)
	NameNL      string // "name_nl"
	NameFR      string // "name_fr"
	GroupNL     string // "group_name_nl"
	ComponentNL string // "component_name_nl"
	StatusName  string // "status_name" as published
	Status      ComponentStatus
	Description string // "description"
}

// Name returns the first non-empty of NameNL, ComponentNL, NameFR and ID.
func (c Component) Name() string {
	for _, s := range []string{c.NameNL, c.ComponentNL, c.NameFR} {
		if s != "" {
			return s
		}
	}
	return c.ID
}

type feedComponent struct {
	ID          json.RawMessage `json:"id"`
	NameNL      json.RawMessage `json:"name_nl"`
	NameFR      json.RawMessage `json:"name_fr"`
	GroupNL     json.RawMessage `json:"group_name_nl"`
	ComponentNL json.RawMessage `json:"component_name_nl"`
	StatusName  json.RawMessage `json:"status_name"`
	Description json.RawMessage `json:"description"`
}

// ParseStatusFeed parses the status page's JSON feed: an array of components or an object
// whose "data" field is that array. Input is bounded (MaxStatusFeedBytes, nesting, count).
// A component needs an id or a name; fields of the wrong JSON type are errors. Errors are
// *FeedError values matching ErrInvalidFeed.
func ParseStatusFeed(data []byte) ([]Component, error) {
	if len(data) > MaxStatusFeedBytes {
		return nil, &FeedError{Index: -1, Reason: fmt.Sprintf("%d bytes, more than %d", len(data), MaxStatusFeedBytes)}
	}
	if err := checkJSONNesting(data); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &FeedError{Index: -1, Reason: "empty body"}
	}
	var items []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, &FeedError{Index: -1, Reason: "not a JSON array of components: " + err.Error()}
		}
	case '{':
		var wrapper struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(trimmed, &wrapper); err != nil {
			return nil, &FeedError{Index: -1, Reason: "not JSON: " + err.Error()}
		}
		d := bytes.TrimSpace(wrapper.Data)
		if len(d) == 0 || d[0] != '[' {
			return nil, &FeedError{Index: -1, Reason: `object without a "data" array`}
		}
		if err := json.Unmarshal(d, &items); err != nil {
			return nil, &FeedError{Index: -1, Reason: `"data" is not an array of components: ` + err.Error()}
		}
	default:
		return nil, &FeedError{Index: -1, Reason: "not a JSON array or object"}
	}
	if len(items) > maxFeedComponents {
		return nil, &FeedError{Index: -1, Reason: fmt.Sprintf("more than %d components", maxFeedComponents)}
	}
	out := make([]Component, 0, len(items))
	for i, raw := range items {
		var fc feedComponent
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
			return nil, &FeedError{Index: i, Field: "component", Reason: "not a JSON object"}
		}
		if err := json.Unmarshal(raw, &fc); err != nil {
			return nil, &FeedError{Index: i, Field: "component", Reason: err.Error()}
		}
		var c Component
		var err error
		if c.ID, err = feedID(fc.ID); err != nil {
			return nil, &FeedError{Index: i, Field: "id", Reason: err.Error()}
		}
		fields := []struct {
			name string
			raw  json.RawMessage
			dst  *string
		}{
			{"name_nl", fc.NameNL, &c.NameNL},
			{"name_fr", fc.NameFR, &c.NameFR},
			{"group_name_nl", fc.GroupNL, &c.GroupNL},
			{"component_name_nl", fc.ComponentNL, &c.ComponentNL},
			{"status_name", fc.StatusName, &c.StatusName},
			{"description", fc.Description, &c.Description},
		}
		for _, f := range fields {
			if *f.dst, err = feedString(f.raw); err != nil {
				return nil, &FeedError{Index: i, Field: f.name, Reason: err.Error()}
			}
		}
		if c.ID == "" && c.NameNL == "" && c.NameFR == "" && c.ComponentNL == "" {
			return nil, &FeedError{Index: i, Field: "id", Reason: "component has neither id nor name"}
		}
		c.Status = ParseComponentStatus(c.StatusName)
		out = append(out, c)
	}
	return out, nil
}

// feedString accepts a JSON string or null.
func feedString(raw json.RawMessage) (string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return "", nil
	}
	if t[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	if err := json.Unmarshal(t, &s); err != nil {
		return "", err
	}
	if len(s) > maxFeedStringLength {
		return "", fmt.Errorf("longer than %d bytes", maxFeedStringLength)
	}
	return strings.TrimSpace(s), nil
}

// feedID accepts a JSON number (kept as written), a string or null.
func feedID(raw json.RawMessage) (string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return "", nil
	}
	if t[0] == '"' {
		return feedString(t)
	}
	var n json.Number
	if err := json.Unmarshal(t, &n); err != nil {
		return "", errors.New("not a number or string")
	}
	if len(n) > 64 {
		return "", errors.New("number too long")
	}
	return n.String(), nil
}

// checkJSONNesting refuses documents nested deeper than maxFeedJSONNestLevel before
// encoding/json builds anything from them.
func checkJSONNesting(data []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > maxFeedJSONNestLevel {
				return &FeedError{Index: -1, Reason: fmt.Sprintf("nested deeper than %d", maxFeedJSONNestLevel)}
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}
