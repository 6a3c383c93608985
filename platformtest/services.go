package platformtest

import (
	"strings"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// SOAPAction values of the services (API contract of ehgate).
const (
	ActionSTS = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecureToken"
	// ActionSTSWSTrust and ActionSTSChallenge are the WS-Trust STS's operations
	// (ehealth-iam-sts-ws-trust-1.3-proxy-v1_X509.wsdl).
	ActionSTSWSTrust          = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"
	ActionSTSChallenge        = "urn:be:fgov:ehealth:sts:protocol:v1:Challenge"
	ActionInsurability        = "urn:be:fgov:ehealth:insurability:protocol:v2:GetInsurabilityForPharmacist"
	ActionGenericInsurability = "urn:be:fgov:ehealth:genericinsurability:protocol:v1:GetInsurability"
	ActionETK                 = "urn:be:fgov:ehealth:etkdepot:1_0:protocol:v1:GetEtk"
	ActionTarification        = "urn:be:fgov:ehealth:mycarenet:tarification:protocol:v1:SendTarificationRequest"
)

// servicePaths are the paths of each service: the primary path (the one
// the first site is listed with) first, then the BCP fallback path (the
// one the other sites are listed with), if the service has one.
var servicePaths = map[string][]string{
	ServiceSTS:                 {"/IAM/Saml11TokenService/v1"},
	ServiceSTSWSTrust:          {"/IAM/SecurityTokenService/v1"},
	ServiceInsurability:        {"/Insurability/v2", "/ehealth/bcp/insurability"},
	ServiceGenericInsurability: {"/GenericInsurability/v1", "/ehealth/bcp/genericinsurability/v1"},
	ServiceETK:                 {"/EtkDepot/v1"},
	ServiceTarification:        {"/MyCareNet/Tarification/v1", "/ehealth/bcp/tarification/v1"},
}

// businessServices lists the services of a business site, in list order.
var businessServices = []string{ServiceSTS, ServiceSTSWSTrust, ServiceETK, ServiceInsurability, ServiceGenericInsurability, ServiceTarification}

func (p *Platform) businessRoutes() (map[string]route, []string) {
	handlers := map[string]func(*exchange) reply{
		ServiceSTS:                 p.serveSTS,
		ServiceSTSWSTrust:          p.serveSTSWSTrust,
		ServiceInsurability:        p.serveInsurability,
		ServiceGenericInsurability: p.serveGenericInsurability,
		ServiceETK:                 p.serveETK,
		ServiceTarification:        p.serveTarification,
	}
	routes := map[string]route{}
	for svc, paths := range servicePaths {
		for _, path := range paths {
			routes[path] = route{service: svc, handle: handlers[svc]}
		}
	}
	return routes, businessServices
}

func (p *Platform) controlRoutes() (map[string]route, []string) {
	return map[string]route{
		"/servicelist.sha2":       {service: ServiceList, handle: p.serveListSHA2},
		"/servicelist.xml":        {service: ServiceList, handle: p.serveListXML},
		"/nl/api/components/prod": {service: ServiceStatusFeed, handle: p.serveStatusFeed},
		"/fr/api/components/prod": {service: ServiceStatusFeed, handle: p.serveStatusFeed},
	}, []string{ServiceList, ServiceStatusFeed}
}

// URL returns the endpoint of service on site: the primary path on the
// first site, the BCP fallback path on the others (every site serves every
// path). It returns "" for an unknown service or site.
func (p *Platform) URL(service, site string) string {
	svc, err := CanonicalService(service)
	if err != nil {
		return ""
	}
	paths, ok := servicePaths[svc]
	if !ok {
		return ""
	}
	for i, s := range p.sites {
		if s.name == site {
			if i > 0 && len(paths) > 1 {
				return s.URL() + paths[1]
			}
			return s.URL() + paths[0]
		}
	}
	return ""
}

const contentTypeXML = "text/xml; charset=utf-8"

// faultCodeFor returns the SOAP faultcode that goes with a detail code:
// security codes (SOA-01xxx) blame the client, the rest the server.
func faultCodeFor(code string) string {
	if strings.HasPrefix(code, "SOA-01") || strings.HasPrefix(code, "SOA-00") {
		return "soapenv:Client"
	}
	return "soapenv:Server"
}

// soapFault builds a fault reply (HTTP 500, as SOAP 1.1 requires); nested codes ("" = none)
// are written deeper than detail/*/Code.
func soapFault(faultcode, faultstring, code string, nested ...string) reply {
	f := &soap.Fault{Code: faultcode, String: faultstring}
	if code != "" {
		f.Codes = []string{code}
	}
	for _, n := range nested {
		if n != "" {
			f.AllCodes = append(append(f.AllCodes[:0:0], f.Codes...), n)
		}
	}
	b, err := soap.Marshal(soap.NewFaultEnvelope(f))
	if err != nil {
		return reply{status: 500, contentType: "text/plain; charset=utf-8", body: []byte(faultstring)}
	}
	return reply{status: 500, contentType: contentTypeXML, body: b, outcome: OutcomeBadRequest}
}

// rejected is the platform's answer to a request that failed security checks.
func rejected(reason string) reply {
	r := soapFault("soapenv:Client", "SOA-01001: user not authenticated: "+reason, "SOA-01001")
	r.outcome = OutcomeRejected
	return r
}

// noAccess is the answer to an authenticated caller without the right attributes.
func noAccess(reason string) reply {
	r := soapFault("soapenv:Client", "SOA-01002: user has no access: "+reason, "SOA-01002")
	r.outcome = OutcomeRejected
	return r
}

// badRequest is the answer to a request the service cannot understand.
func badRequest(reason string) reply {
	return soapFault("soapenv:Client", "invalid request: "+reason, "")
}

// okEnvelope wraps body in an envelope and answers it.
func okEnvelope(body *etree.Element, outcome Outcome) reply {
	b, err := soap.Marshal(soap.NewEnvelope(body))
	if err != nil {
		r := soapFault("soapenv:Server", "cannot serialise answer", "SOA-02001")
		r.outcome = OutcomeBadRequest
		return r
	}
	return reply{status: 200, contentType: contentTypeXML, body: b, outcome: outcome}
}

// checkAction refuses a request whose SOAPAction header names another operation.
func checkAction(x *exchange, want string) *reply {
	got := strings.Trim(strings.TrimSpace(x.r.Header.Get("SOAPAction")), `"`)
	if got == "" || got == want {
		return nil
	}
	r := badRequest("unknown SOAPAction " + got)
	return &r
}

// child returns el's first child element with local name local, or nil.
func child(el *etree.Element, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// path follows local names from el; nil when a step is missing.
func path(el *etree.Element, locals ...string) *etree.Element {
	for _, l := range locals {
		el = child(el, l)
	}
	return el
}

// text returns the trimmed text of the element at path below el, or "".
func text(el *etree.Element, locals ...string) string {
	e := path(el, locals...)
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text())
}

// builder creates elements with a fixed namespace prefix.
type builder struct{ prefix string }

func (b builder) el(parent *etree.Element, local string, textValue ...string) *etree.Element {
	var e *etree.Element
	if parent == nil {
		e = etree.NewElement(b.prefix + ":" + local)
	} else {
		e = parent.CreateElement(b.prefix + ":" + local)
	}
	if len(textValue) > 0 {
		e.SetText(textValue[0])
	}
	return e
}
