package platformtest

import (
	"fmt"
	"strings"
	"time"
)

// FaultKind says how a site misbehaves for a service.
type FaultKind int

// Fault kinds. A site holds at most one fault per service; injecting another
// replaces it.
const (
	// FaultNone is the zero kind: the service behaves.
	FaultNone FaultKind = iota
	// FaultRefuse refuses connections. Injected for every service of a site
	// (service ""), the site resets its open connections and then every new
	// one as soon as it is accepted, before the TLS handshake, so clients get
	// "connection reset by peer" (a transport failure, like "connection
	// refused"); the site keeps its port bound, so clearing the fault cannot
	// fail and the site serves again on the same port. Injected for one
	// service, the connection carrying a request for it is reset without an
	// answer (the other services share the port and keep working).
	FaultRefuse
	// FaultHang accepts the request and never answers until the client gives
	// up, the fault is cleared (then it answers normally) or the platform closes.
	FaultHang
	// FaultDelay answers normally after Delay.
	FaultDelay
	// FaultDrip answers normally but sends the body at BytesPerSecond.
	FaultDrip
	// FaultHTTPStatus answers Status (default 503) with an HTML body, as a
	// proxy would, and a Retry-After header when RetryAfter is set.
	FaultHTTPStatus
	// FaultSOAP answers a SOAP fault whose detail code is Code (default
	// SOA-02001); faultcode soapenv:Client for SOA-01xxx, soapenv:Server otherwise.
	FaultSOAP
	// FaultMalformed answers 200 text/xml with a body that is not well-formed XML.
	FaultMalformed
	// FaultHuge answers 200 text/xml with a well-formed envelope of Size bytes
	// (default 64 MiB), streamed.
	FaultHuge
	// FaultBadSTSSignature makes the STS issue assertions whose signature does
	// not verify.
	FaultBadSTSSignature
	// FaultExpiredToken makes the STS issue assertions that have already
	// expired; on a business service, every token is treated as expired.
	FaultExpiredToken
	// FaultClockSkew offsets the service's clock by Skew (token conditions,
	// timestamp freshness, IssueInstant).
	FaultClockSkew
)

var faultKindNames = [...]string{"none", "refuse", "hang", "delay", "drip", "http-status", "soap-fault", "malformed", "huge", "bad-sts-signature", "expired-token", "clock-skew"}

// String returns the kind's name as ParseFaultKind accepts it.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultKindNames) {
		return faultKindNames[k]
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// ParseFaultKind returns the kind named s (as String returns it; "soap" and
// "status" are accepted too).
func ParseFaultKind(s string) (FaultKind, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "soap":
		return FaultSOAP, nil
	case "status", "http":
		return FaultHTTPStatus, nil
	}
	for i, n := range faultKindNames {
		if n == s {
			return FaultKind(i), nil
		}
	}
	return 0, fmt.Errorf("platformtest: unknown fault kind %q", s)
}

// Fault is a misbehaviour injected into a site for a service. Only the
// fields of its Kind are used.
type Fault struct {
	Kind           FaultKind
	Delay          time.Duration // FaultDelay
	BytesPerSecond int           // FaultDrip; 0 = 64
	Status         int           // FaultHTTPStatus; 0 = 503
	RetryAfter     time.Duration // FaultHTTPStatus: sent as Retry-After (whole seconds) when > 0
	Code           string        // FaultSOAP; "" = SOA-02001
	// FaultString is a FaultSOAP's faultstring ("" = "injected fault: service unavailable"):
	// the platform echoes request data there (a patient's SSIN or name).
	FaultString string
	// Location is sent as the Location header of a FaultHTTPStatus answer when set: with a
	// 3xx Status, a redirect (a load balancer sending the client elsewhere).
	Location string
	// NestedCode is a code a FaultSOAP carries deeper than detail/*/Code (as MyCareNet's
	// detailed errors do) when set: reported to the caller, never deciding switching.
	NestedCode string
	Size       int64         // FaultHuge; 0 = 64 MiB
	Skew       time.Duration // FaultClockSkew
}

// Validate reports a fault whose fields are out of range.
func (f Fault) Validate() error {
	switch {
	case f.Kind < FaultNone || f.Kind > FaultClockSkew:
		return fmt.Errorf("platformtest: fault: unknown Kind %d", int(f.Kind))
	case f.Delay < 0:
		return fmt.Errorf("platformtest: fault: negative Delay %v", f.Delay)
	case f.BytesPerSecond < 0:
		return fmt.Errorf("platformtest: fault: negative BytesPerSecond %d", f.BytesPerSecond)
	case f.Status != 0 && (f.Status < 100 || f.Status > 599):
		return fmt.Errorf("platformtest: fault: Status %d is not an HTTP status", f.Status)
	case f.RetryAfter < 0:
		return fmt.Errorf("platformtest: fault: negative RetryAfter %v", f.RetryAfter)
	case f.Size < 0:
		return fmt.Errorf("platformtest: fault: negative Size %d", f.Size)
	}
	return nil
}

func (f Fault) withDefaults() Fault {
	if f.BytesPerSecond == 0 {
		f.BytesPerSecond = 64
	}
	if f.Status == 0 {
		f.Status = 503
	}
	if f.Code == "" {
		f.Code = "SOA-02001"
	}
	if f.Size == 0 {
		f.Size = 64 << 20
	}
	return f
}

// Short service names, as bcp's ServiceList.Lookup knows them (the UDDI key
// after "business:"). Site methods also accept the aliases "sts",
// "insurability", "genericinsurability", "etk" and "ehbox".
const (
	ServiceSTS                 = "iamsaml11tokenservice:v1"
	ServiceSTSWSTrust          = "iamsecuritytokenservice:v1"
	ServiceInsurability        = "insurability:v2"
	ServiceGenericInsurability = "genericinsurability:v1"
	ServiceETK                 = "etkdepot:v1"
	// ServiceEHealthBox is eHealthBox publication v3 (SendMessage), the
	// platform's write: its UDDI key as the official connector looks it up
	// (taktik/freehealth-connector, endpoint.ehbox.publication.v3).
	ServiceEHealthBox = "ehboxpublication:v3"
	// ServiceList and ServiceStatusFeed are the services of the control site.
	ServiceList       = "servicelist"
	ServiceStatusFeed = "statusfeed"
)

// ControlSite is the name of the site serving the service list and the
// status feed; faults can be injected into it like into any site.
const ControlSite = "control"

var serviceAliases = map[string]string{
	"sts":                      ServiceSTS,
	"insurability":             ServiceInsurability,
	"genericinsurability":      ServiceGenericInsurability,
	"etk":                      ServiceETK,
	"etkdepot":                 ServiceETK,
	"ehbox":                    ServiceEHealthBox,
	"ehboxpublication":         ServiceEHealthBox,
	"service-list":             ServiceList,
	"status":                   ServiceStatusFeed,
	"status-feed":              ServiceStatusFeed,
	ServiceSTS:                 ServiceSTS,
	ServiceSTSWSTrust:          ServiceSTSWSTrust,
	"sts-wstrust":              ServiceSTSWSTrust,
	ServiceInsurability:        ServiceInsurability,
	ServiceGenericInsurability: ServiceGenericInsurability,
	ServiceETK:                 ServiceETK,
	ServiceEHealthBox:          ServiceEHealthBox,
	ServiceList:                ServiceList,
	ServiceStatusFeed:          ServiceStatusFeed,
}

// CanonicalService returns the short name of a service given its short name,
// its alias or its full UDDI key ("uddi:ehealth-fgov-be:business:insurability:v2").
func CanonicalService(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "uddi:ehealth-fgov-be:business:")
	if c, ok := serviceAliases[n]; ok {
		return c, nil
	}
	return "", fmt.Errorf("platformtest: unknown service %q", name)
}
