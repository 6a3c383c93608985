package bcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Namespaces of the platform's service list.
const (
	NSServiceListV1 = "urn:be:fgov:ehealth:bcp:protocol:v1"
	NSServiceListV2 = "urn:be:fgov:ehealth:bcp:protocol:v2"
)

// Bounds on a service list, applied by ParseServiceList before and while reading it.
// The real production list is about 15 KiB with some 25 services.
const (
	MaxServiceListBytes  = 4 << 20 // whole document
	maxListDepth         = 32      // element nesting
	maxListElements      = 50_000  // elements of any namespace, the signature included
	maxListComments      = 1_000   // comments and processing instructions: real lists have none
	maxListServices      = 2_000
	maxServiceEndpoints  = 64
	maxListURLLength     = 2048
	maxListAttrLength    = 1024 // any attribute value we keep
	maxCacheKeyLength    = 64 << 10
	maxErrorValueQuoting = 80
)

// Sentinel errors of service-list parsing. Every error ParseServiceList returns is a
// *ListError that matches ErrInvalidList and, for the conditions below, one of these.
var (
	// ErrInvalidList is matched by every parse or validation error of a service list.
	ErrInvalidList = errors.New("bcp: invalid service list")
	// ErrListMalformed: the document is not well-formed XML or is not a ServiceList.
	ErrListMalformed = errors.New("bcp: malformed service list")
	// ErrListDoctype: the document carries a DOCTYPE or another directive (DTDs and entities are refused).
	ErrListDoctype = errors.New("bcp: service list has a DOCTYPE")
	// ErrListTooLarge: the document exceeds a size, depth or count bound.
	ErrListTooLarge = errors.New("bcp: service list exceeds a limit")
)

// ListError says what is wrong with a service list: which service (UDDI key, or "" for the
// list itself), which field, the offending value (truncated) and why.
type ListError struct {
	Service string // UDDI key of the service, "" when the problem is not inside a service
	Field   string // e.g. "@IssueInstant", "Endpoint[2]/@Order", "Cache/Expiry/@Duration"
	Value   string // the offending value, truncated to a few dozen characters
	Reason  string
	Err     error // ErrListMalformed, ErrListDoctype, ErrListTooLarge or nil
}

// Error names the service, field and offending value when known, and the reason.
func (e *ListError) Error() string {
	var b strings.Builder
	b.WriteString("bcp: service list")
	if e.Service != "" {
		b.WriteString(": service ")
		b.WriteString(e.Service)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	if e.Value != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(e.Value))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns ErrInvalidList and the more specific sentinel, if any.
func (e *ListError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidList, e.Err}
	}
	return []error{ErrInvalidList}
}

func listErr(service, field, value, reason string) *ListError {
	if len(value) > maxErrorValueQuoting {
		value = value[:maxErrorValueQuoting] + "…"
	}
	return &ListError{Service: service, Field: field, Value: value, Reason: reason}
}

// EndpointStatus says whether the service list marks an endpoint as the one to use.
// The zero value is StatusActive, so an Endpoint built by hand is usable.
type EndpointStatus int

const (
	// StatusActive: Status="ACTIVE" in the list.
	StatusActive EndpointStatus = iota
	// StatusInactive: Status="INACTIVE" in the list.
	StatusInactive
)

// String returns "ACTIVE" or "INACTIVE" as spelled in the list.
func (s EndpointStatus) String() string {
	switch s {
	case StatusActive:
		return "ACTIVE"
	case StatusInactive:
		return "INACTIVE"
	default:
		return "EndpointStatus(" + strconv.Itoa(int(s)) + ")"
	}
}

// Endpoint is one address of a service.
type Endpoint struct {
	Service  string // UDDI key of the service
	URL      string
	Order    int // 0 = the default (primary); recovery endpoints follow in Order
	Status   EndpointStatus
	Site     string // optional label (datacenter), from configuration, not from the list
	Provider string // optional label, from configuration, not from the list
}

// CacheStrategy is the v2 list's hint for a service's cache use.
type CacheStrategy int

const (
	// CacheEndpointFirst: call the endpoint; use the cache when it fails (the default).
	CacheEndpointFirst CacheStrategy = iota
	// CacheCacheFirst: answer from a fresh cache entry without calling the endpoint.
	CacheCacheFirst
)

// String returns "ENDPOINT_FIRST" or "CACHE_FIRST" as spelled in the list.
func (s CacheStrategy) String() string {
	switch s {
	case CacheEndpointFirst:
		return "ENDPOINT_FIRST"
	case CacheCacheFirst:
		return "CACHE_FIRST"
	default:
		return "CacheStrategy(" + strconv.Itoa(int(s)) + ")"
	}
}

// CacheHint is the v2 list's Cache element of a service.
type CacheHint struct {
	Strategy CacheStrategy
	// Key is the cache key definition (XSLT) as published: the inline content when KeyInline,
	// else a location. ehgate builds its own keys; it is kept for inspection.
	Key       string
	KeyInline bool
	// TTL is how long a cached answer stays usable (Expiry Type="ttl"); 0 means it does not
	// expire (Expiry Type="none" or no Expiry element).
	TTL time.Duration
}

// Service is one service of the list with its endpoints sorted by Order.
type Service struct {
	ID        string // UDDI key, e.g. "uddi:ehealth-fgov-be:business:insurability:v2"
	Name      string // the list's display name, e.g. "INSURABILITY V2"
	Endpoints []Endpoint
	Cache     *CacheHint // nil when the list gives no hint (always nil in v1 lists)
}

// ShortName returns the part of the UDDI key after "business:" ("insurability:v2"),
// or "" when the key has no such part.
func (s Service) ShortName() string { return ShortServiceName(s.ID) }

// ShortServiceName returns the part of a UDDI key after "business:", or "" when there is none.
func ShortServiceName(key string) string {
	const marker = ":business:"
	i := strings.LastIndex(key, marker)
	if i < 0 {
		return ""
	}
	return key[i+len(marker):]
}

// ServiceList is a parsed service list. Treat it as immutable once published: the Loader
// hands the same value to every reader.
type ServiceList struct {
	ID           string    // @Id
	IssueInstant time.Time // @IssueInstant; a list without offset is read as UTC
	Environment  string    // @Environment, e.g. "Production", "Acceptation"
	Version      int       // 1 or 2 (the namespace)
	Services     []Service // in document order
	Raw          []byte    // the bytes parsed
	SHA256       string    // lower-case hex SHA-256 of Raw, as published in <base>.sha2

	index map[string]int // UDDI key and unambiguous short name → index in Services
}

// Lookup returns the service whose UDDI key is nameOrKey or whose short name (the part of the
// key after "business:", e.g. "insurability:v2") is nameOrKey. A short name shared by two
// keys of different organisations is ambiguous and only found by its full key.
func (l *ServiceList) Lookup(nameOrKey string) (Service, bool) {
	if l == nil {
		return Service{}, false
	}
	if l.index != nil {
		i, ok := l.index[nameOrKey]
		if !ok {
			return Service{}, false
		}
		return l.Services[i], true
	}
	// A list built by hand: linear search with the same rules.
	found := -1
	for i := range l.Services {
		if l.Services[i].ID == nameOrKey {
			return l.Services[i], true
		}
		if ShortServiceName(l.Services[i].ID) == nameOrKey {
			if found >= 0 {
				return Service{}, false
			}
			found = i
		}
	}
	if found < 0 {
		return Service{}, false
	}
	return l.Services[found], true
}

func (l *ServiceList) buildIndex() {
	l.index = make(map[string]int, 2*len(l.Services))
	short := make(map[string]int, len(l.Services))
	for i, s := range l.Services {
		l.index[s.ID] = i
		if n := ShortServiceName(s.ID); n != "" {
			if _, dup := short[n]; dup {
				short[n] = -1
			} else {
				short[n] = i
			}
		}
	}
	for n, i := range short {
		if _, isKey := l.index[n]; i >= 0 && !isKey {
			l.index[n] = i
		}
	}
}

// ParseServiceList parses and validates a service list in either namespace (v1, or v2 with
// EndpointList and Cache). It does not verify the signature: the Loader does that with the
// function it is given. Input is bounded (MaxServiceListBytes, nesting depth, element count,
// comments and processing instructions);
// any DOCTYPE is refused. Endpoint URLs must be absolute https URLs, in tests too. Elements of
// other namespaces (the signature) and unknown elements are skipped. Errors are *ListError
// values that name the service and field.
func ParseServiceList(data []byte) (*ServiceList, error) {
	if len(data) > MaxServiceListBytes {
		e := listErr("", "", "", fmt.Sprintf("%d bytes, more than %d", len(data), MaxServiceListBytes))
		e.Err = ErrListTooLarge
		return nil, e
	}
	p := listParser{data: data, d: xml.NewDecoder(bytes.NewReader(data))}
	p.d.Strict = true
	l, err := p.parse()
	if err != nil {
		return nil, err
	}
	l.Raw = data
	sum := sha256.Sum256(data)
	l.SHA256 = hex.EncodeToString(sum[:])
	l.buildIndex()
	return l, nil
}

type listParser struct {
	data     []byte
	d        *xml.Decoder
	depth    int
	elements int
	comments int
	ns       string
	prevOff  int64
}

// next returns the next token, enforcing the bounds and refusing directives.
func (p *listParser) next() (xml.Token, error) {
	p.prevOff = p.d.InputOffset()
	tok, err := p.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		e := listErr("", "", "", "not well-formed XML: "+err.Error())
		e.Err = ErrListMalformed
		return nil, e
	}
	switch tok.(type) {
	case xml.StartElement:
		p.depth++
		p.elements++
		if p.depth > maxListDepth {
			e := listErr("", "", "", fmt.Sprintf("elements nested deeper than %d", maxListDepth))
			e.Err = ErrListTooLarge
			return nil, e
		}
		if p.elements > maxListElements {
			e := listErr("", "", "", fmt.Sprintf("more than %d elements", maxListElements))
			e.Err = ErrListTooLarge
			return nil, e
		}
	case xml.EndElement:
		p.depth--
	case xml.Directive:
		e := listErr("", "", "", "DOCTYPE and other directives are refused")
		e.Err = ErrListDoctype
		return nil, e
	case xml.ProcInst, xml.Comment:
		// Meaningless here and tolerated, but bounded: a flood of them is only a way to
		// make a small list costly.
		if p.comments++; p.comments > maxListComments {
			e := listErr("", "", "", fmt.Sprintf("more than %d comments and processing instructions", maxListComments))
			e.Err = ErrListTooLarge
			return nil, e
		}
	}
	return tok, nil
}

// skip consumes the rest of the element whose start was just read.
func (p *listParser) skip() error {
	for depth := 1; depth > 0; {
		tok, err := p.next()
		if err != nil {
			return p.eof(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return nil
}

func (p *listParser) eof(err error) error {
	if err == io.EOF {
		e := listErr("", "", "", "not well-formed XML: unexpected end of document")
		e.Err = ErrListMalformed
		return e
	}
	return err
}

// text reads the character data of the element whose start was just read; child elements are
// an error (the caller names the field).
func (p *listParser) text(limit int) (string, bool, error) {
	var b strings.Builder
	for {
		tok, err := p.next()
		if err != nil {
			return "", false, p.eof(err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if b.Len()+len(t) > limit {
				return "", false, nil
			}
			b.Write(t)
		case xml.StartElement:
			return "", false, nil
		case xml.EndElement:
			return b.String(), true, nil
		}
	}
}

func (p *listParser) parse() (*ServiceList, error) {
	var root xml.StartElement
	for {
		tok, err := p.next()
		if err != nil {
			if err == io.EOF {
				e := listErr("", "", "", "no ServiceList element")
				e.Err = ErrListMalformed
				return nil, e
			}
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	l := &ServiceList{}
	switch root.Name.Space {
	case NSServiceListV1:
		l.Version = 1
	case NSServiceListV2:
		l.Version = 2
	default:
		e := listErr("", "{"+root.Name.Space+"}"+root.Name.Local, "", "root is not a ServiceList of namespace "+NSServiceListV1+" or "+NSServiceListV2)
		e.Err = ErrListMalformed
		return nil, e
	}
	if root.Name.Local != "ServiceList" {
		e := listErr("", root.Name.Local, "", "root element is not ServiceList")
		e.Err = ErrListMalformed
		return nil, e
	}
	p.ns = root.Name.Space
	var issue string
	for _, a := range root.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "Id":
			l.ID = a.Value
		case "IssueInstant":
			issue = a.Value
		case "Environment":
			l.Environment = a.Value
		}
	}
	if len(l.ID) > maxListAttrLength || len(l.Environment) > maxListAttrLength {
		e := listErr("", "@Id or @Environment", "", "attribute longer than "+strconv.Itoa(maxListAttrLength)+" bytes")
		e.Err = ErrListTooLarge
		return nil, e
	}
	if issue == "" {
		return nil, listErr("", "@IssueInstant", "", "missing")
	}
	t, err := parseDateTime(issue)
	if err != nil {
		return nil, listErr("", "@IssueInstant", issue, err.Error())
	}
	l.IssueInstant = t

	seen := map[string]bool{}
	for {
		tok, err := p.next()
		if err != nil {
			return nil, p.eof(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// End of ServiceList: nothing but comments, PIs and space may follow.
			if err := p.trailer(); err != nil {
				return nil, err
			}
			if len(l.Services) == 0 {
				return nil, listErr("", "Service", "", "the list has no service")
			}
			return l, nil
		case xml.StartElement:
			if t.Name.Space != p.ns || t.Name.Local != "Service" {
				if err := p.skip(); err != nil {
					return nil, err
				}
				continue
			}
			if len(l.Services) >= maxListServices {
				e := listErr("", "Service", "", fmt.Sprintf("more than %d services", maxListServices))
				e.Err = ErrListTooLarge
				return nil, e
			}
			s, err := p.service(t, len(l.Services))
			if err != nil {
				return nil, err
			}
			if seen[s.ID] {
				return nil, listErr(s.ID, "@Id", s.ID, "duplicate service")
			}
			seen[s.ID] = true
			l.Services = append(l.Services, s)
		}
	}
}

func (p *listParser) trailer() error {
	for {
		tok, err := p.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := listErr("", t.Name.Local, "", "element after the end of ServiceList")
			e.Err = ErrListMalformed
			return e
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				e := listErr("", "", "", "text after the end of ServiceList")
				e.Err = ErrListMalformed
				return e
			}
		}
	}
}

func (p *listParser) service(se xml.StartElement, index int) (Service, error) {
	var s Service
	hasID := false
	for _, a := range se.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "Id":
			s.ID, hasID = strings.TrimSpace(a.Value), true
		case "Name":
			s.Name = a.Value
		}
	}
	label := s.ID
	if label == "" {
		label = fmt.Sprintf("Service[%d]", index+1)
	}
	if !hasID || s.ID == "" {
		return s, listErr(label, "@Id", "", "missing")
	}
	if len(s.ID) > maxListAttrLength || len(s.Name) > maxListAttrLength {
		e := listErr(label, "@Id or @Name", "", "attribute longer than "+strconv.Itoa(maxListAttrLength)+" bytes")
		e.Err = ErrListTooLarge
		return s, e
	}
	orders := map[int]bool{}
	addEndpoint := func(ee xml.StartElement) error {
		n := len(s.Endpoints) + 1
		field := fmt.Sprintf("Endpoint[%d]", n)
		if n > maxServiceEndpoints {
			e := listErr(label, field, "", fmt.Sprintf("more than %d endpoints", maxServiceEndpoints))
			e.Err = ErrListTooLarge
			return e
		}
		ep := Endpoint{Service: s.ID}
		var order, status string
		var hasOrder, hasStatus bool
		for _, a := range ee.Attr {
			if a.Name.Space != "" {
				continue
			}
			switch a.Name.Local {
			case "Order":
				order, hasOrder = a.Value, true
			case "Status":
				status, hasStatus = a.Value, true
			}
		}
		if !hasOrder {
			return listErr(label, field+"/@Order", "", "missing")
		}
		o, err := strconv.Atoi(strings.TrimSpace(order))
		if err != nil || o < 0 || o > 1_000_000 {
			return listErr(label, field+"/@Order", order, "not an integer from 0 to 1000000")
		}
		if orders[o] {
			return listErr(label, field+"/@Order", order, "duplicate Order in this service")
		}
		orders[o] = true
		ep.Order = o
		switch {
		case !hasStatus:
			return listErr(label, field+"/@Status", "", "missing")
		case strings.TrimSpace(status) == "ACTIVE":
			ep.Status = StatusActive
		case strings.TrimSpace(status) == "INACTIVE":
			ep.Status = StatusInactive
		default:
			return listErr(label, field+"/@Status", status, "not ACTIVE or INACTIVE")
		}
		raw, ok, err := p.text(maxListURLLength + 256)
		if err != nil {
			return err
		}
		if !ok {
			return listErr(label, field, "", "not a URL of at most "+strconv.Itoa(maxListURLLength)+" bytes")
		}
		u := strings.TrimSpace(raw)
		if err := checkEndpointURL(u); err != nil {
			return listErr(label, field, u, err.Error())
		}
		ep.URL = u
		s.Endpoints = append(s.Endpoints, ep)
		return nil
	}
	for {
		tok, err := p.next()
		if err != nil {
			return s, p.eof(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if len(s.Endpoints) == 0 {
				return s, listErr(label, "Endpoint", "", "no endpoint")
			}
			sort.SliceStable(s.Endpoints, func(i, j int) bool { return s.Endpoints[i].Order < s.Endpoints[j].Order })
			return s, nil
		case xml.StartElement:
			if t.Name.Space != p.ns {
				if err := p.skip(); err != nil {
					return s, err
				}
				continue
			}
			switch t.Name.Local {
			case "Endpoint":
				if err := addEndpoint(t); err != nil {
					return s, err
				}
			case "EndpointList":
				for done := false; !done; {
					tok, err := p.next()
					if err != nil {
						return s, p.eof(err)
					}
					switch t := tok.(type) {
					case xml.EndElement:
						done = true
					case xml.StartElement:
						if t.Name.Space == p.ns && t.Name.Local == "Endpoint" {
							if err := addEndpoint(t); err != nil {
								return s, err
							}
						} else if err := p.skip(); err != nil {
							return s, err
						}
					}
				}
			case "Cache":
				if s.Cache != nil {
					return s, listErr(label, "Cache", "", "more than one Cache element")
				}
				c, err := p.cache(t, label)
				if err != nil {
					return s, err
				}
				s.Cache = c
			default:
				if err := p.skip(); err != nil {
					return s, err
				}
			}
		}
	}
}

func (p *listParser) cache(se xml.StartElement, label string) (*CacheHint, error) {
	c := &CacheHint{}
	for _, a := range se.Attr {
		if a.Name.Space == "" && a.Name.Local == "Strategy" {
			switch strings.TrimSpace(a.Value) {
			case "ENDPOINT_FIRST":
				c.Strategy = CacheEndpointFirst
			case "CACHE_FIRST":
				c.Strategy = CacheCacheFirst
			default:
				return nil, listErr(label, "Cache/@Strategy", a.Value, "not ENDPOINT_FIRST or CACHE_FIRST")
			}
		}
	}
	sawExpiry := false
	for {
		tok, err := p.next()
		if err != nil {
			return nil, p.eof(err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return c, nil
		case xml.StartElement:
			if t.Name.Space != p.ns {
				if err := p.skip(); err != nil {
					return nil, err
				}
				continue
			}
			switch t.Name.Local {
			case "Key":
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "Inline" {
						v, err := strconv.ParseBool(strings.TrimSpace(a.Value))
						if err != nil {
							return nil, listErr(label, "Cache/Key/@Inline", a.Value, "not a boolean")
						}
						c.KeyInline = v
					}
				}
				// The inline XSLT may contain elements: keep the content verbatim.
				start := p.d.InputOffset()
				if err := p.skip(); err != nil {
					return nil, err
				}
				end := p.prevOff
				if end < start || end > int64(len(p.data)) {
					return nil, listErr(label, "Cache/Key", "", "cannot locate the content")
				}
				if end-start > maxCacheKeyLength {
					e := listErr(label, "Cache/Key", "", fmt.Sprintf("longer than %d bytes", maxCacheKeyLength))
					e.Err = ErrListTooLarge
					return nil, e
				}
				c.Key = strings.TrimSpace(string(p.data[start:end]))
			case "Expiry":
				if sawExpiry {
					return nil, listErr(label, "Cache/Expiry", "", "more than one Expiry element")
				}
				sawExpiry = true
				var typ, dur string
				var hasDur bool
				for _, a := range t.Attr {
					if a.Name.Space != "" {
						continue
					}
					switch a.Name.Local {
					case "Type":
						typ = strings.TrimSpace(a.Value)
					case "Duration":
						dur, hasDur = strings.TrimSpace(a.Value), true
					}
				}
				switch typ {
				case "none":
					c.TTL = 0
				case "ttl":
					if !hasDur {
						return nil, listErr(label, "Cache/Expiry/@Duration", "", "missing for Type=\"ttl\"")
					}
					d, err := ParseXSDuration(dur)
					if err != nil {
						return nil, listErr(label, "Cache/Expiry/@Duration", dur, err.Error())
					}
					if d <= 0 {
						return nil, listErr(label, "Cache/Expiry/@Duration", dur, "not a positive duration")
					}
					c.TTL = d
				default:
					return nil, listErr(label, "Cache/Expiry/@Type", typ, "not none or ttl")
				}
				if err := p.skip(); err != nil {
					return nil, err
				}
			default:
				if err := p.skip(); err != nil {
					return nil, err
				}
			}
		}
	}
}

// checkEndpointURL accepts absolute https URLs with a host and no user information. Plain
// http is refused, in tests too: the test platform serves HTTPS on loopback.
func checkEndpointURL(s string) error {
	if s == "" {
		return errors.New("empty URL")
	}
	if len(s) > maxListURLLength {
		return fmt.Errorf("URL longer than %d bytes", maxListURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" {
		return errors.New("scheme is not https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if u.User != nil {
		return errors.New("URL carries user information")
	}
	return nil
}

// parseDateTime reads an xs:dateTime: RFC 3339 with or without fractional seconds; without a
// zone offset the time is taken as UTC.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("not an xs:dateTime (e.g. 2022-12-20T07:17:39.067+01:00)")
}

// ParseXSDuration parses an xs:duration such as "P30D", "PT8H" or "P1DT2H30M1.5S" strictly:
// "P", then optional nY nM nD, then optionally "T" and nH nM nS (fraction allowed on seconds
// only), in that order, each at most once, at least one component, and no sign but an optional
// leading "-". xs:duration has no fixed length for years and months: a year counts 365 days and
// a month 30 days. Durations beyond about 290 years are refused.
func ParseXSDuration(s string) (time.Duration, error) {
	orig := s
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("xs:duration %q: %s", truncate(orig, maxErrorValueQuoting), why)
	}
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	if !strings.HasPrefix(s, "P") {
		return bad("does not start with P")
	}
	s = s[1:]
	const day = 24 * time.Hour
	dateUnits := []struct {
		c    byte
		unit time.Duration
	}{{'Y', 365 * day}, {'M', 30 * day}, {'D', day}}
	timeUnits := []struct {
		c    byte
		unit time.Duration
	}{{'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}}
	var total time.Duration
	components := 0
	const maxTotal = time.Duration(1<<63 - 1)
	add := func(n uint64, frac string, unit time.Duration) bool {
		if n > uint64(maxTotal/unit) {
			return false
		}
		v := time.Duration(n) * unit
		if frac != "" {
			// unit is a second here; keep nanosecond precision.
			digits := frac
			if len(digits) > 9 {
				digits = digits[:9]
			}
			ns, _ := strconv.ParseUint(digits+strings.Repeat("0", 9-len(digits)), 10, 64)
			v += time.Duration(ns)
		}
		if total > maxTotal-v {
			return false
		}
		total += v
		return true
	}
	// number reads digits (and, when allowFrac, "." digits) and returns them and the designator.
	number := func(allowFrac bool) (uint64, string, byte, bool) {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 19 {
			return 0, "", 0, false
		}
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil {
			return 0, "", 0, false
		}
		frac := ""
		if allowFrac && i < len(s) && s[i] == '.' {
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j == i+1 {
				return 0, "", 0, false
			}
			frac = s[i+1 : j]
			i = j
		}
		if i >= len(s) {
			return 0, "", 0, false
		}
		c := s[i]
		s = s[i+1:]
		return n, frac, c, true
	}
	next := 0
	for len(s) > 0 && s[0] != 'T' {
		n, frac, c, ok := number(false)
		if !ok || frac != "" {
			return bad("expected digits followed by Y, M or D")
		}
		k := next
		for k < len(dateUnits) && dateUnits[k].c != c {
			k++
		}
		if k == len(dateUnits) {
			return bad("designator " + string(c) + " out of place in the date part")
		}
		if !add(n, "", dateUnits[k].unit) {
			return bad("too long")
		}
		next = k + 1
		components++
	}
	if len(s) > 0 { // s[0] == 'T'
		s = s[1:]
		if len(s) == 0 {
			return bad("T with no time component")
		}
		next = 0
		for len(s) > 0 {
			n, frac, c, ok := number(true)
			if !ok {
				return bad("expected digits followed by H, M or S")
			}
			k := next
			for k < len(timeUnits) && timeUnits[k].c != c {
				k++
			}
			if k == len(timeUnits) {
				return bad("designator " + string(c) + " out of place in the time part")
			}
			if frac != "" && c != 'S' {
				return bad("a fraction is allowed on seconds only")
			}
			if !add(n, frac, timeUnits[k].unit) {
				return bad("too long")
			}
			next = k + 1
			components++
		}
	}
	if components == 0 {
		return bad("no component")
	}
	if neg {
		total = -total
	}
	return total, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
