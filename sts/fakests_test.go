package sts

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/soap"
)

// issue says how the fake STS answers one request; the zero value is a good answer.
type issue struct {
	status, subStatus, statusMessage string // "" = samlp:Success
	issuer                           string // "" = DefaultIssuer
	notBefore                        time.Duration
	lifetime                         time.Duration // 0 = the STS's grant
	assertions                       int           // 0 = 1
	hokCert                          *x509.Certificate
	tamper                           bool // change the assertion after signing
	inherit                          bool // declare the saml namespace on the envelope only
	confirmation                     string
	inResponseTo                     string // "" = the request's RequestID; "-" = none
	statusValue                      string // raw StatusCode/@Value of a "success" answer
	secondConfirmation               *x509.Certificate
	signer                           *Credential // nil = the STS's credential
}

// fakeSTS is a minimal SAML-P 1.1 STS over loopback HTTPS. It verifies the request's
// WS-Security signature (and the holder-of-key signature when there is one) and issues an
// assertion signed by stsKey. The final proof of this package is against platformtest; this
// one lets tests shape every answer.
type fakeSTS struct {
	t        testing.TB
	srv      *httptest.Server
	now      func() time.Time
	grant    time.Duration
	verifier *soap.Verifier
	roots    *x509.CertPool // client certificates' CA
	sts      *Credential

	requests atomic.Int64
	mu       sync.Mutex
	answer   func(n int64) (issue, http.HandlerFunc) // per request: how to answer, or a raw handler
	last     *etree.Document                         // the last request received
	lastHoK  *x509.Certificate                       // holder-of-key signer of the samlp:Request, if signed
	gate     chan struct{}                           // when set, each request waits for it
}

func newFakeSTS(t testing.TB, now func() time.Time, grant time.Duration) *fakeSTS {
	p := getPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.root)
	roots.AddCert(p.inter) // the WS-Security token carries the leaf only
	v, err := soap.NewVerifier(soap.VerifierConfig{Roots: roots, Now: now})
	require.NoError(t, err)
	s := &fakeSTS{t: t, now: now, grant: grant, verifier: v, roots: roots, sts: p.credential(t, 3, "eHealth STS")}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// STSRoots is the pool the assertion signatures chain to (the same CA as the clients').
func (s *fakeSTS) STSRoots() *x509.CertPool { return s.roots }

// Pin pins the fake STS's certificate by fingerprint.
func (s *fakeSTS) Pin() SignerPin {
	sum := sha256.Sum256(s.sts.Certificate.Raw)
	return SignerPin{Fingerprints: []string{hex.EncodeToString(sum[:])}}
}

func (s *fakeSTS) setAnswer(f func(n int64) (issue, http.HandlerFunc)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *fakeSTS) lastRequest() (*etree.Document, *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.lastHoK
}

func (s *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	s.mu.Lock()
	answer, gate := s.answer, s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	var is issue
	if answer != nil {
		var h http.HandlerFunc
		is, h = answer(n)
		if h != nil {
			h(w, r)
			return
		}
	}
	if r.Method != http.MethodPost || strings.Trim(r.Header.Get("SOAPAction"), `"`) != SOAPAction {
		http.Error(w, "bad method or SOAPAction", http.StatusBadRequest)
		return
	}
	msg, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	ver, err := s.verifier.Verify(msg)
	if err != nil {
		s.fault(w, "soapenv:Client", "not authenticated: "+err.Error(), "SOA-01001")
		return
	}
	req := ver.Body
	if req == nil || req.Tag != "Request" || req.NamespaceURI() != nsSAMLP {
		s.fault(w, "soapenv:Client", "not a samlp:Request", "SOA-00001")
		return
	}
	var hokSigner *x509.Certificate
	if childNS(req, nsDSig, "Signature") != nil {
		hokSigner, err = soap.VerifyEnveloped(req, s.roots, soap.VerifyEnvelopedOptions{IDAttr: "RequestID", Now: s.now})
		if err != nil {
			s.fault(w, "soapenv:Client", "holder-of-key signature: "+err.Error(), "SOA-01001")
			return
		}
	}
	s.mu.Lock()
	s.last, s.lastHoK = ver.Envelope, hokSigner
	s.mu.Unlock()

	conf := childNS(childNS(childNS(req, nsSAMLP, "AttributeQuery"), nsSAML, "Subject"), nsSAML, "SubjectConfirmation")
	certEl := childNS(childNS(childNS(conf, nsDSig, "KeyInfo"), nsDSig, "X509Data"), nsDSig, "X509Certificate")
	if certEl == nil {
		s.fault(w, "soapenv:Client", "no holder-of-key certificate", "SOA-00001")
		return
	}
	der, _ := base64.StdEncoding.DecodeString(certEl.Text())
	hok, err := x509.ParseCertificate(der)
	if err != nil {
		s.fault(w, "soapenv:Client", "bad holder-of-key certificate", "SOA-00001")
		return
	}
	if is.hokCert == nil {
		is.hokCert = hok
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(s.response(req.SelectAttrValue("RequestID", ""), ver.Certificate, is))
}

func (s *fakeSTS) fault(w http.ResponseWriter, code, msg, detail string) {
	out, err := soap.Marshal(soap.NewFaultEnvelope(&soap.Fault{Code: code, String: msg, Codes: []string{detail}}))
	require.NoError(s.t, err)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(out)
}

// response builds the signed samlp:Response.
func (s *fakeSTS) response(inResponseTo string, requester *x509.Certificate, is issue) []byte {
	now := s.now().UTC()
	doc := etree.NewDocument()
	env := doc.CreateElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", soap.NSEnvelope)
	if is.inherit {
		env.CreateAttr("xmlns:saml", nsSAML)
		env.CreateAttr("xmlns:ds", nsDSig)
	}
	resp := env.CreateElement("soapenv:Body").CreateElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", nsSAMLP)
	resp.CreateAttr("ResponseID", newID())
	if is.inResponseTo != "" {
		inResponseTo = is.inResponseTo
	}
	if inResponseTo != "-" {
		resp.CreateAttr("InResponseTo", inResponseTo)
	}
	resp.CreateAttr("IssueInstant", now.Format(samlTime))
	resp.CreateAttr("MajorVersion", "1")
	resp.CreateAttr("MinorVersion", "1")
	st := resp.CreateElement("samlp:Status")
	code := st.CreateElement("samlp:StatusCode")
	if is.status == "" {
		code.CreateAttr("Value", cmp.Or(is.statusValue, "samlp:Success"))
	} else {
		code.CreateAttr("Value", is.status)
		if is.subStatus != "" {
			code.CreateElement("samlp:StatusCode").CreateAttr("Value", is.subStatus)
		}
		st.CreateElement("samlp:StatusMessage").SetText(is.statusMessage)
	}
	if is.status != "" {
		return marshal(s.t, doc)
	}
	lifetime := is.lifetime
	if lifetime == 0 {
		lifetime = s.grant
	}
	issuer := is.issuer
	if issuer == "" {
		issuer = DefaultIssuer
	}
	count := is.assertions
	if is.assertions == 0 {
		count = 1
	}
	if is.assertions < 0 {
		count = 0
	}
	for range count {
		a := resp.CreateElement("saml:Assertion")
		if !is.inherit {
			a.CreateAttr("xmlns:saml", nsSAML)
		}
		a.CreateAttr("AssertionID", newID())
		a.CreateAttr("IssueInstant", now.Format(samlTime))
		a.CreateAttr("Issuer", issuer)
		a.CreateAttr("MajorVersion", "1")
		a.CreateAttr("MinorVersion", "1")
		c := a.CreateElement("saml:Conditions")
		c.CreateAttr("NotBefore", now.Add(is.notBefore).Format(samlTime))
		c.CreateAttr("NotOnOrAfter", now.Add(is.notBefore+lifetime).Format(samlTime))
		subject := func(parent *etree.Element, confirm *x509.Certificate) {
			sub := parent.CreateElement("saml:Subject")
			ni := sub.CreateElement("saml:NameIdentifier")
			ni.CreateAttr("Format", formatX509SubjectName)
			ni.SetText(requester.Subject.String())
			if confirm == nil {
				return
			}
			sc := sub.CreateElement("saml:SubjectConfirmation")
			method := methodHolderOfKey
			if is.confirmation != "" {
				method = is.confirmation
			}
			sc.CreateElement("saml:ConfirmationMethod").SetText(method)
			ki := sc.CreateElement("ds:KeyInfo")
			if !is.inherit {
				ki.CreateAttr("xmlns:ds", nsDSig)
			}
			ki.CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(confirm.Raw))
		}
		// As the real STS: the confirmation in the AuthenticationStatement only.
		auth := a.CreateElement("saml:AuthenticationStatement")
		auth.CreateAttr("AuthenticationInstant", now.Format(samlTime))
		auth.CreateAttr("AuthenticationMethod", "urn:oasis:names:tc:SAML:1.0:am:X509-PKI")
		subject(auth, is.hokCert)
		as := a.CreateElement("saml:AttributeStatement")
		subject(as, is.secondConfirmation)
		attr := as.CreateElement("saml:Attribute")
		attr.CreateAttr("AttributeName", "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean")
		attr.CreateAttr("AttributeNamespace", NamespaceCertified)
		attr.CreateElement("saml:AttributeValue").SetText("true")
		signer := s.sts
		if is.signer != nil {
			signer = is.signer
		}
		require.NoError(s.t, soap.SignEnveloped(a, signer.Key, soap.EnvelopedOptions{
			IDAttr:       "AssertionID",
			Certificates: append([]*x509.Certificate{signer.Certificate}, signer.Chain...),
		}))
		if is.tamper {
			attr.SelectElement("saml:AttributeValue").SetText("false")
		}
	}
	return marshal(s.t, doc)
}

func marshal(t testing.TB, doc *etree.Document) []byte {
	out, err := soap.Marshal(doc)
	require.NoError(t, err)
	return out
}

// rawHandler answers with a fixed status, content type and body.
func rawHandler(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.Copy(w, bytes.NewReader([]byte(body)))
	}
}
