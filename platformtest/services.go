package platformtest

import (
	"bytes"
	"errors"
	"strings"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// SOAPAction values of the services. A request may also send none (or an
// empty one); another operation's is refused.
const (
	ActionSTS = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecureToken"
	// ActionSTSWSTrust and ActionSTSChallenge are the WS-Trust STS's operations
	// (ehealth-iam-sts-ws-trust-1.3-proxy-v1_X509.wsdl).
	ActionSTSWSTrust   = "urn:be:fgov:ehealth:sts:protocol:v1:RequestSecurityToken"
	ActionSTSChallenge = "urn:be:fgov:ehealth:sts:protocol:v1:Challenge"
	// From the WSDLs (testdata/xsd): InsurabilityConsultation-proxy-v2.wsdl,
	// GenericInsurabilityWebService-1_0.wsdl.
	ActionInsurability        = "urn:be:fgov:ehealth:insurability:protocol:v2:GetInsurabilityForPharmacist"
	ActionGenericInsurability = "urn:be:fgov:ehealth:genericinsurability:protocol:v1:GetInsurability"
	// The ETK depot's WSDL gives no soapAction: the request sends an empty one.
	ActionETK = ""
	// As the official connector sets it (taktik/freehealth-connector,
	// business/ehbox/service/impl/EhboxServiceImpl.kt).
	ActionEHealthBox = "urn:be:fgov:ehealth:ehbox:publication:protocol:v3:sendMessage"
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
	ServiceEHealthBox:          {"/ehBoxPublication/v3"},
}

// businessServices lists the services of a business site, in list order.
var businessServices = []string{ServiceSTS, ServiceSTSWSTrust, ServiceETK, ServiceInsurability, ServiceGenericInsurability, ServiceEHealthBox}

func (p *Platform) businessRoutes() (map[string]route, []string) {
	handlers := map[string]func(*exchange) reply{
		ServiceSTS:                 p.serveSTS,
		ServiceSTSWSTrust:          p.serveSTSWSTrust,
		ServiceInsurability:        p.serveInsurability,
		ServiceGenericInsurability: p.serveGenericInsurability,
		ServiceETK:                 p.serveETK,
		ServiceEHealthBox:          p.serveEHealthBox,
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

// soapFault builds a fault reply (HTTP 500, as SOAP 1.1 requires). With a
// detail code, the detail holds one SOA error as the platform's errors
// schema (ehealth-errors-schema-soa-1_1.xsd) defines it: a SystemError
// when the server is at fault, a BusinessError (Origin Consumer) when the
// consumer is. Nested codes ("" = none) are written deeper than
// detail/*/Code, where a client reports them but does not switch on them.
func soapFault(faultcode, faultstring, code string, nested ...string) reply {
	fe := etree.NewElement("soapenv:Fault")
	fe.CreateElement("faultcode").SetText(faultcode)
	fe.CreateElement("faultstring").SetText(faultstring)
	var detail *etree.Element
	if code != "" {
		detail = fe.CreateElement("detail")
		detail.AddChild(soaError(faultcode, faultstring, code))
	}
	for _, n := range nested {
		if n == "" {
			continue
		}
		if detail == nil {
			detail = fe.CreateElement("detail")
		}
		e := detail.CreateElement("soa:BusinessError")
		e.CreateAttr("xmlns:soa", soap.NSFaultDetail)
		e.CreateElement("soa:Detail").CreateElement("soa:Code").SetText(n)
	}
	b, err := soap.Marshal(soap.NewEnvelope(fe))
	if err != nil {
		return reply{status: 500, contentType: "text/plain; charset=utf-8", body: []byte(faultstring)}
	}
	return reply{status: 500, contentType: contentTypeXML, body: b, outcome: OutcomeBadRequest}
}

// NSSOAError is the namespace of the platform's SOAP fault details.
const NSSOAError = "urn:be:fgov:ehealth:errors:soa:v1"

// soaError builds a soa:SystemError or soa:BusinessError: Origin, Code and
// Message are unqualified (errors core schema), Environment is in the soa
// namespace.
func soaError(faultcode, message, code string) *etree.Element {
	kind, origin := "SystemError", "Provider"
	if strings.HasSuffix(faultcode, ":Client") {
		kind, origin = "BusinessError", "Consumer"
	}
	e := etree.NewElement("soa:" + kind)
	e.CreateAttr("xmlns:soa", NSSOAError)
	e.CreateAttr("Id", newID())
	e.CreateElement("Origin").SetText(origin)
	e.CreateElement("Code").SetText(code)
	m := e.CreateElement("Message")
	m.CreateAttr("xml:lang", "en")
	m.SetText(message)
	e.CreateElement("soa:Environment").SetText("Production")
	return e
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

// CodeXSDCompliance is the fault code of a request that does not validate
// against its schema: "SOA-03006", with faultstring "XSD compliance
// failure", as the platform's SOA layer answers (the code and text eBox
// integrators report for a pattern or length violation; the official
// connector's issue tracker shows the same validation failure surfacing as
// a SOAP fault: taktik/freehealth-connector issue #13).
const CodeXSDCompliance = "SOA-03006"

// checkSchema validates a request payload against its schema; a non-nil
// reply is the fault to send.
func checkSchema(s Schema, payload *etree.Element) *reply {
	err := ValidateElement(s, payload)
	if err == nil {
		return nil
	}
	reason := err.Error()
	var se *SchemaError
	if errors.As(err, &se) {
		reason = se.Path + ": " + se.Reason
	}
	r := soapFault("soapenv:Client", CodeXSDCompliance+": XSD compliance failure: "+reason, CodeXSDCompliance)
	r.outcome = OutcomeBadRequest
	return &r
}

// checkSTSRequest validates a SAML-P 1.1 token request (samlp:Request)
// against the SAML 1.1 protocol schema before the STS handles it; other
// bodies (the WS-Trust dialect, garbage) are left to the STS's handler.
func checkSTSRequest(body []byte) *reply {
	doc, err := soap.Parse(bytes.NewReader(body), soap.Limits{})
	if err != nil {
		return nil
	}
	req, err := soap.BodyContent(doc)
	if err != nil || req == nil || req.Tag != "Request" || req.NamespaceURI() != soap.NSSAMLP {
		return nil
	}
	return checkSchema(SchemaSAMLProtocol, req)
}

// checkAnswer is the platform's own guard: an answer that does not
// validate against its schema is a bug of platformtest, reported as a
// server fault rather than sent.
func checkAnswer(s Schema, answer *etree.Element) *reply {
	if err := ValidateElement(s, answer); err != nil {
		r := soapFault("soapenv:Server", "SOA-02001: platformtest built an invalid answer: "+err.Error(), "SOA-02001")
		r.outcome = OutcomeBadRequest
		return &r
	}
	return nil
}

// answer checks body against its schema, wraps it in an envelope and
// answers it.
func answer(s Schema, body *etree.Element, outcome Outcome) reply {
	if r := checkAnswer(s, body); r != nil {
		return *r
	}
	return okEnvelope(body, outcome)
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
