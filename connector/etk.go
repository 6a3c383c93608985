package connector

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/ehgate/ehgate/cache"
)

// The ETK depot, docs/wire/etk.md; the wire format is in etk_wire.go.
const (
	NSETKProtocol = "urn:be:fgov:ehealth:etkdepot:1_0:protocol"
	// ActionETK is the depot's SOAPAction: empty, as its WSDL gives none (taktik/freehealth-connector,
	// compiled/RECIPE.1.8.4/META-INF/wsdl/EtkDepot_v1.wsdl: <soap:operation/> without soapAction).
	ActionETK = ""
	// ServiceETK is the short service-list name of the ETK depot.
	ServiceETK = "etkdepot:v1"
	// maxMatching bounds how many MatchingEtk identifiers are followed for one request.
	maxMatching = 16
)

// Identifier names a party in the ETK depot: Type is SSIN, NIHII, NIHII-PHARMACY, CBE, EHP, …
type Identifier struct {
	Type          string
	Value         string
	ApplicationID string // optional
}

func (id Identifier) validate() (Identifier, error) {
	id.Type = strings.TrimSpace(id.Type)
	id.Value = strings.TrimSpace(id.Value)
	id.ApplicationID = strings.TrimSpace(id.ApplicationID)
	if id.Type == "" || len(id.Type) > 32 {
		return id, &RequestError{Field: "Identifier.Type", Reason: "must be 1 to 32 characters"}
	}
	for _, c := range id.Type {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return id, &RequestError{Field: "Identifier.Type", Reason: "must be upper-case letters, digits, - or _"}
		}
	}
	if id.Value == "" || len(id.Value) > 64 || strings.ContainsAny(id.Value, "=,+") {
		return id, &RequestError{Field: "Identifier.Value", Reason: "must be 1 to 64 characters without = , +"}
	}
	if len(id.ApplicationID) > 64 || strings.ContainsAny(id.ApplicationID, "=,+") {
		return id, &RequestError{Field: "Identifier.ApplicationID", Reason: "must be at most 64 characters without = , +"}
	}
	if id.Type == "SSIN" {
		if err := ValidateSSIN(id.Value); err != nil {
			return id, err
		}
	}
	return id, nil
}

// cacheKey is the identifier's key in the local store.
func (id Identifier) cacheKey() string {
	return id.Type + "\x1f" + id.Value + "\x1f" + id.ApplicationID
}

// ETK is one party's encryption token key: the CMS structure as the depot gave it and the
// encryption certificate inside.
type ETK struct {
	Identifier  Identifier // the identifier this ETK answers (from MatchingEtk when followed)
	Raw         []byte     // DER of the CMS ContentInfo
	Certificate *x509.Certificate
}

// ETKResult is the ETKs matching an identifier and where they came from.
type ETKResult struct {
	ETKs     []ETK
	Source   Source
	AsOf     time.Time // when the depot gave them
	Degraded bool      // the depot was unreachable; the ETKs come from the local store
	Endpoint string
}

// ErrETK is the sentinel of an ETK that cannot be used: not a CMS SignedData holding a
// certificate, a certificate for another party, or an expired certificate.
var ErrETK = errors.New("connector: unusable etk")

// ETKError says why an ETK was refused.
type ETKError struct{ Reason string }

// Error says why the ETK was refused.
func (e *ETKError) Error() string { return "connector: unusable etk: " + e.Reason }

// Is reports whether target is ErrETK.
func (e *ETKError) Is(target error) bool { return target == ErrETK }

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

type cmsContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type cmsEncapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type cmsSignedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo cmsEncapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// maxETKBytes bounds one ETK's DER.
const maxETKBytes = 64 << 10

// ParseETK reads the DER of a CMS ContentInfo holding SignedData whose encapsulated content is
// the DER of the party's encryption certificate, and returns that certificate. It checks the
// structure, not the CMS signer's signature: the depot is reached over verified TLS and the
// client keeps only certificates whose subject names the party asked for.
func ParseETK(der []byte) (*x509.Certificate, error) {
	if len(der) == 0 || len(der) > maxETKBytes {
		return nil, &ETKError{Reason: fmt.Sprintf("size %d out of bounds", len(der))}
	}
	var ci cmsContentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		return nil, &ETKError{Reason: "not a CMS ContentInfo: " + err.Error()}
	}
	if len(rest) != 0 {
		return nil, &ETKError{Reason: "trailing data after ContentInfo"}
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, &ETKError{Reason: "content type " + ci.ContentType.String() + " is not signedData"}
	}
	var sd cmsSignedData
	if rest, err = asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, &ETKError{Reason: "not a SignedData: " + err.Error()}
	}
	if len(rest) != 0 {
		return nil, &ETKError{Reason: "trailing data after SignedData"}
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) {
		return nil, &ETKError{Reason: "encapsulated content type is not data"}
	}
	content, err := octets(sd.EncapContentInfo.EContent.Bytes)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(content)
	if err != nil {
		return nil, &ETKError{Reason: "encapsulated content is not a certificate: " + err.Error()}
	}
	return cert, nil
}

// octets reads the eContent OCTET STRING, primitive (DER) or constructed (BER segments).
func octets(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, &ETKError{Reason: "no encapsulated content"}
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(b, &v)
	if err != nil || len(rest) != 0 || v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString {
		return nil, &ETKError{Reason: "encapsulated content is not an OCTET STRING"}
	}
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out []byte
	for seg := v.Bytes; len(seg) > 0; {
		var s asn1.RawValue
		if seg, err = asn1.Unmarshal(seg, &s); err != nil || s.Tag != asn1.TagOctetString || s.IsCompound {
			return nil, &ETKError{Reason: "malformed constructed OCTET STRING"}
		}
		out = append(out, s.Bytes...)
	}
	return out, nil
}

// matchesIdentifier reports whether cert's subject is CN=<Type>=<Value> and, when the identifier
// names an application, carries OU=<ApplicationID>.
func matchesIdentifier(cert *x509.Certificate, id Identifier) bool {
	if cert.Subject.CommonName != id.Type+"="+id.Value {
		return false
	}
	if id.ApplicationID == "" {
		return true
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == id.ApplicationID {
			return true
		}
	}
	return false
}

// checkETK parses der and checks that its certificate is id's and valid at now.
func checkETK(der []byte, id Identifier, now time.Time) (ETK, error) {
	cert, err := ParseETK(der)
	if err != nil {
		return ETK{}, err
	}
	if !matchesIdentifier(cert, id) {
		return ETK{}, &ETKError{Reason: "certificate subject does not match the identifier asked"}
	}
	if now.After(cert.NotAfter) {
		return ETK{}, &ETKError{Reason: "certificate expired " + cert.NotAfter.UTC().Format(time.RFC3339)}
	}
	if now.Before(cert.NotBefore) {
		return ETK{}, &ETKError{Reason: "certificate not yet valid"}
	}
	return ETK{Identifier: id, Raw: der, Certificate: cert}, nil
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// etkRecord is one ETK as the local store keeps it.
type etkRecord struct {
	Identifier Identifier
	DER        []byte
}

// ETK returns the encryption token keys of a party, as docs/wire/etk.md asks: kept durably per
// (Type, Value, ApplicationID); a stored ETK younger than Policies.ETK.RefreshAfter (8 h) is
// served without calling the depot, an older one is served and refreshed in the background;
// while the depot is unreachable (the last refresh or call failed, or the service is in
// fallback) a stored ETK is served while its certificate is valid, with Degraded=true; an
// expired certificate is never served. MatchingEtk answers are followed
// (each identifier asked again); only ETKs whose certificate subject matches the identifier
// asked are kept. An Error answer is a *BusinessError.
func (c *Client) ETK(ctx context.Context, id Identifier) (ETKResult, error) {
	return observeCall(c, ctx, OperationETK, ServiceETK, func(ctx context.Context) (ETKResult, error) {
		return c.etk(ctx, id)
	}, func(r ETKResult, err error) CallEnd {
		return CallEnd{Outcome: outcomeOf(r.Source, err), Endpoint: r.Endpoint, Degraded: r.Degraded}
	})
}

// etk is ETK without the observer.
func (c *Client) etk(ctx context.Context, id Identifier) (ETKResult, error) {
	id, err := id.validate()
	if err != nil {
		return ETKResult{}, err
	}
	ctx, end, err := c.begin(ctx)
	if err != nil {
		return ETKResult{}, err
	}
	defer end()
	if err := ctx.Err(); err != nil {
		return ETKResult{}, err
	}
	key := id.cacheKey()
	pol := c.cfg.Policies.ETK
	forced := c.modes.forced(ServiceETK)
	var cached ETKResult
	var cerr error = cache.ErrNotFound
	fresh := false
	if !pol.NoStore {
		cached, fresh, cerr = c.storedETK(context.WithoutCancel(ctx), key)
	}
	switch {
	case forced && cerr == nil:
		cached.Degraded = true
		return cached, nil
	case forced:
		return ETKResult{}, &FallbackError{Service: ServiceETK, Err: ErrFallback, Cache: cerr}
	case cerr == nil:
		if !fresh {
			c.refreshETK(id, key)
		}
		// The last attempt to reach the depot (a refresh or a call) failed: say so.
		cached.Degraded = c.modes.needsLive(ServiceETK)
		return cached, nil
	}
	lctx, cancel := context.WithTimeout(ctx, pol.CallTimeout)
	res, err := c.liveETK(lctx, id, key)
	cancel()
	if e := c.ended(ctx); e != nil && err != nil {
		return ETKResult{}, e // the caller's cancel or Close: nothing recorded
	}
	if err == nil {
		c.noteLive(ServiceETK)
		return res, nil
	}
	if !platformDown(err) || errors.Is(err, ErrETK) {
		return ETKResult{}, err
	}
	c.noteFailure(ServiceETK, err)
	return ETKResult{}, &FallbackError{Service: ServiceETK, Err: err, Cache: cerr}
}

// storedETK returns the stored ETKs of key whose certificates are valid now, and whether they
// are fresh (younger than RefreshAfter).
func (c *Client) storedETK(ctx context.Context, key string) (ETKResult, bool, error) {
	s, e, err := lookup[[]etkRecord, Identifier](c, ctx, functionETK, key, 0)
	if err != nil {
		return ETKResult{}, false, err
	}
	now := c.clock.Now()
	res := ETKResult{Source: SourceCache, AsOf: s.AsOf}
	for _, r := range s.Answer {
		etk, err := checkETK(r.DER, r.Identifier, now)
		if err != nil {
			continue // expired since it was stored: never served
		}
		res.ETKs = append(res.ETKs, etk)
	}
	if len(res.ETKs) == 0 {
		return ETKResult{}, false, &cache.ExpiredError{Function: functionETK, StoredAt: e.StoredAt, Age: e.Age, Until: now, NotAfter: true}
	}
	return res, e.Age < c.cfg.Policies.ETK.RefreshAfter, nil
}

// refreshETK asks the depot again in the background (one refresh per key at a time).
func (c *Client) refreshETK(id Identifier, key string) {
	if _, busy := c.etkFlight.LoadOrStore(key, struct{}{}); busy {
		return
	}
	started := c.goBackground(func() {
		defer c.etkFlight.Delete(key)
		ctx, cancel := context.WithTimeout(c.ctx, 2*c.cfg.Policies.ETK.AttemptTimeout)
		defer cancel()
		if _, err := c.liveETK(ctx, id, key); err != nil {
			c.log.Debug("connector: background etk refresh failed", zap.String("type", id.Type), zap.Error(err))
			if platformDown(err) && !errors.Is(err, ErrETK) {
				c.modes.update(ServiceETK, CauseUnavailable, func(s *serviceState) { s.unavailable = true })
			}
			return
		}
		c.noteLive(ServiceETK)
	})
	if !started {
		c.etkFlight.Delete(key)
	}
}

// liveETK asks the depot for id (following MatchingEtk) and stores the result.
func (c *Client) liveETK(ctx context.Context, id Identifier, key string) (ETKResult, error) {
	r, endpoint, err := c.askETK(ctx, id)
	if err != nil {
		return ETKResult{}, err
	}
	now := c.clock.Now()
	res := ETKResult{Source: SourceLive, AsOf: now, Endpoint: endpoint}
	var records []etkRecord
	if r.etk != nil {
		etk, err := checkETK(r.etk, id, now)
		if err != nil {
			return ETKResult{}, err
		}
		res.ETKs = append(res.ETKs, etk)
		records = append(records, etkRecord{Identifier: id, DER: r.etk})
	}
	var firstErr error
	for _, ids := range r.matching {
		for _, mid := range ids {
			mid, err := mid.validate()
			if err != nil || mid.Type != id.Type || mid.Value != id.Value {
				continue // a match must be the party asked for
			}
			sub, ep, err := c.askETK(ctx, mid)
			if err == nil && sub.etk == nil {
				err = &ResponseError{Service: ServiceETK, Endpoint: ep, Reason: "MatchingEtk answered with MatchingEtk again"}
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			etk, err := checkETK(sub.etk, mid, now)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			res.ETKs = append(res.ETKs, etk)
			records = append(records, etkRecord{Identifier: mid, DER: sub.etk})
		}
	}
	if len(res.ETKs) == 0 {
		if firstErr != nil {
			return ETKResult{}, firstErr
		}
		return ETKResult{}, &ETKError{Reason: "no matching etk"}
	}
	if !c.cfg.Policies.ETK.NoStore {
		notAfter := res.ETKs[0].Certificate.NotAfter
		for _, e := range res.ETKs[1:] {
			if e.Certificate.NotAfter.Before(notAfter) {
				notAfter = e.Certificate.NotAfter
			}
		}
		put(c, ctx, functionETK, key, stored[[]etkRecord, Identifier]{Request: id, Answer: records, Endpoint: endpoint, AsOf: now}, notAfter, nil)
	}
	return res, nil
}

// askETK sends one GetEtkRequest (unsigned: the depot needs no authentication).
func (c *Client) askETK(ctx context.Context, id Identifier) (etkResponse, string, error) {
	return liveCall(c, ctx, ServiceETK, ActionETK, buildETKRequest(id), false, parseETKResponse)
}
