package platformtest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"

	"github.com/ehgate/ehgate/soap"
)

// Namespaces of the service list (docs/wire/servicelist.md).
const (
	NSServiceListV1 = "urn:be:fgov:ehealth:bcp:protocol:v1"
	NSServiceListV2 = "urn:be:fgov:ehealth:bcp:protocol:v2"
)

// UDDIPrefix is the prefix of the services' keys in the list.
const UDDIPrefix = "uddi:ehealth-fgov-be:business:"

// listedServices are the services of the list, in order, with their names
// as in the real production list and the v2 cache hint (strategy, ttl) if
// any. As in the production list (taktik/freehealth-connector,
// src/main/resources/prod/servicelist.xml), the MyCareNet services have a
// BCP endpoint (Order 1, INACTIVE until the platform moves the service);
// the STS, the ETK depot and the eHealthBox have their eHealth endpoint
// only.
var listedServices = []struct {
	service, name    string
	bcp              bool // the other sites serve a BCP endpoint of it
	strategy, expiry string
}{
	{ServiceSTS, "I.AM STS SAML11", false, "", ""},
	{ServiceSTSWSTrust, "I.AM STS WSTRUST", false, "", ""},
	{ServiceETK, "ETEE ETKDEPOT V1", false, "ENDPOINT_FIRST", "PT8H"},
	{ServiceInsurability, "MCN INSURABILITY V2", true, "ENDPOINT_FIRST", "P30D"},
	{ServiceGenericInsurability, "MCN GENERIC INSURABILITY V1", true, "ENDPOINT_FIRST", "P30D"},
	{ServiceEHealthBox, "EHBOX PUBLICATION V3", false, "", ""},
}

// keyXSLT is the inline cache-key transform of the v2 list (ehgate builds
// its own keys; the element is there because the real list has it).
const keyXSLT = `<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:output method="text"/><xsl:template match="/"><xsl:value-of select="//*[local-name()='Ssin' or local-name()='Inss']"/></xsl:template></xsl:stylesheet>`

type serviceList struct {
	p       *Platform
	mu      sync.Mutex
	id      string
	status  map[[2]string]bool // (service, site) → ACTIVE
	initial map[[2]string]bool // status as at Start
	issued  time.Time
	xml     []byte
	sha     string
}

func newServiceList(p *Platform) (*serviceList, error) {
	l := &serviceList{p: p, id: newID(), status: map[[2]string]bool{}}
	for _, ls := range listedServices {
		for i, s := range p.sites {
			if i == 0 || ls.bcp {
				l.status[[2]string{ls.service, s.name}] = i == 0 || p.cfg.ActiveBCP
			}
		}
	}
	l.initial = maps.Clone(l.status)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l, l.rebuildLocked()
}

// rebuildLocked writes and signs the list with a fresh, strictly later
// IssueInstant.
func (l *serviceList) rebuildLocked() error {
	p := l.p
	now := p.now()
	if !now.After(l.issued) {
		now = l.issued.Add(time.Millisecond)
	}
	ns := NSServiceListV2
	if p.cfg.ListVersion == 1 {
		ns = NSServiceListV1
	}
	root := etree.NewElement("ServiceList")
	root.CreateAttr("xmlns", ns)
	root.CreateAttr("Environment", "Acceptation")
	root.CreateAttr("Id", l.id)
	root.CreateAttr("IssueInstant", now.Format("2006-01-02T15:04:05.000Z07:00"))
	for _, ls := range listedServices {
		svc := root.CreateElement("Service")
		svc.CreateAttr("Id", UDDIPrefix+ls.service)
		svc.CreateAttr("Name", ls.name)
		parent := svc
		if p.cfg.ListVersion == 2 {
			parent = svc.CreateElement("EndpointList")
		}
		for i, s := range p.sites {
			active, listed := l.status[[2]string{ls.service, s.name}]
			if !listed {
				continue
			}
			ep := parent.CreateElement("Endpoint")
			ep.CreateAttr("Order", strconv.Itoa(i))
			st := "ACTIVE"
			if !active {
				st = "INACTIVE"
			}
			ep.CreateAttr("Status", st)
			ep.SetText(p.URL(ls.service, s.name))
		}
		if p.cfg.ListVersion == 2 && ls.strategy != "" {
			c := svc.CreateElement("Cache")
			c.CreateAttr("Strategy", ls.strategy)
			k := c.CreateElement("Key")
			k.CreateAttr("Tranform", "xslt")
			k.CreateAttr("Inline", "true")
			// The schema gives Key simple content: the stylesheet is its text.
			k.SetText(keyXSLT)
			e := c.CreateElement("Expiry")
			e.CreateAttr("Type", "ttl")
			e.CreateAttr("Duration", ls.expiry)
		}
	}
	if err := soap.SignEnveloped(root, p.listKey, soap.EnvelopedOptions{
		IDAttr:       "Id",
		Certificates: []*x509.Certificate{p.listCert},
		XAdES:        true,
		Now:          func() time.Time { return now },
	}); err != nil {
		return fmt.Errorf("platformtest: sign service list: %w", err)
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8" standalone="no"`)
	doc.SetRoot(root)
	b, err := doc.WriteToBytes()
	if err != nil {
		return fmt.Errorf("platformtest: serialise service list: %w", err)
	}
	sum := sha256.Sum256(b)
	l.issued, l.xml, l.sha = now, b, hex.EncodeToString(sum[:])
	return nil
}

// SetEndpointStatus marks service's endpoint on site ACTIVE or INACTIVE in
// the service list, which is re-signed with a later IssueInstant (so its
// .sha2 changes). It panics if the list has no such endpoint (the STS, the
// ETK depot and the eHealthBox are listed on the first site only).
func (p *Platform) SetEndpointStatus(service, site string, active bool) {
	svc, err := CanonicalService(service)
	if err != nil {
		panic(err)
	}
	l := p.list
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{svc, site}
	if _, ok := l.status[k]; !ok {
		panic(fmt.Sprintf("platformtest: the service list has no endpoint of %s on site %q", svc, site))
	}
	l.status[k] = active
	if err := l.rebuildLocked(); err != nil {
		// Signing with a key the platform holds does not fail; keep the old list if it does.
		panic(err)
	}
}

// MoveService publishes a newer signed service list in which service's
// endpoint on site is the only ACTIVE one (every other endpoint of the
// service INACTIVE), as the platform moves a service to its BCP site and
// back. It returns an error if the list has no endpoint of service on site.
func (p *Platform) MoveService(service, site string) error {
	svc, err := CanonicalService(service)
	if err != nil {
		return err
	}
	l := p.list
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.status[[2]string{svc, site}]; !ok {
		return fmt.Errorf("platformtest: the service list has no endpoint of %s on site %q", svc, site)
	}
	for k := range l.status {
		if k[0] == svc {
			l.status[k] = k[1] == site
		}
	}
	return l.rebuildLocked()
}

// RestoreService publishes a newer signed service list in which service's
// endpoints have the status they had at Start.
func (p *Platform) RestoreService(service string) error {
	svc, err := CanonicalService(service)
	if err != nil {
		return err
	}
	l := p.list
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.initial {
		if k[0] == svc {
			l.status[k] = v
		}
	}
	return l.rebuildLocked()
}

// EndpointActive reports whether the current list marks service's endpoint
// on site ACTIVE (false when it has no such endpoint).
func (p *Platform) EndpointActive(service, site string) bool {
	svc, err := CanonicalService(service)
	if err != nil {
		return false
	}
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	return p.list.status[[2]string{svc, site}]
}

// Listed reports whether the service list has an endpoint of service on
// site (what SetEndpointStatus needs).
func (p *Platform) Listed(service, site string) bool {
	svc, err := CanonicalService(service)
	if err != nil {
		return false
	}
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	_, ok := p.list.status[[2]string{svc, site}]
	return ok
}

// ServiceList returns the signed service list as served (.xml).
func (p *Platform) ServiceList() []byte {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	return append([]byte(nil), p.list.xml...)
}

// ServiceListSHA256 returns the hex SHA-256 of the current list, as .sha2 serves it.
func (p *Platform) ServiceListSHA256() string {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	return p.list.sha
}

func (p *Platform) currentList() ([]byte, string) {
	p.list.mu.Lock()
	defer p.list.mu.Unlock()
	return p.list.xml, p.list.sha
}

func notModified(x *exchange, etag string) bool {
	for _, t := range strings.Split(x.r.Header.Get("If-None-Match"), ",") {
		if strings.TrimSpace(t) == etag {
			return true
		}
	}
	return false
}

func (p *Platform) serveListSHA2(x *exchange) reply {
	_, sha := p.currentList()
	return listReply(x, []byte(sha), sha, "text/plain; charset=utf-8")
}

func (p *Platform) serveListXML(x *exchange) reply {
	b, sha := p.currentList()
	return listReply(x, b, sha, "application/xml")
}

func listReply(x *exchange, body []byte, sha, ctype string) reply {
	if x.r.Method != http.MethodGet && x.r.Method != http.MethodHead {
		return reply{status: http.StatusMethodNotAllowed, contentType: "text/plain; charset=utf-8", body: []byte("method not allowed\n"), outcome: OutcomeBadRequest}
	}
	etag := `"` + sha + `"`
	h := http.Header{"Etag": {etag}, "Cache-Control": {"no-cache"}}
	if notModified(x, etag) {
		return reply{status: http.StatusNotModified, header: h, outcome: OutcomeOK}
	}
	return reply{status: http.StatusOK, contentType: ctype, header: h, body: body, outcome: OutcomeOK}
}
