package platformtest

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// IdentityKind is the kind of a registered care provider.
type IdentityKind int

// Kinds of care providers the STS certifies attributes for.
const (
	// Pharmacy is a recognised pharmacy held by a pharmacist.
	Pharmacy IdentityKind = iota + 1
	// GP is a general practitioner.
	GP
)

// String returns "pharmacy" or "gp".
func (k IdentityKind) String() string {
	switch k {
	case Pharmacy:
		return "pharmacy"
	case GP:
		return "gp"
	}
	return fmt.Sprintf("IdentityKind(%d)", int(k))
}

// SAML attribute namespaces and names the STS knows (docs/wire/sts.md).
const (
	NSIdentification = "urn:be:fgov:identification-namespace"
	NSCertified      = "urn:be:fgov:certified-namespace:ehealth"

	AttrCertificateHolderSSIN = "urn:be:fgov:ehealth:1.0:certificateholder:person:ssin"
	AttrPersonSSIN            = "urn:be:fgov:person:ssin"
	AttrPharmacyNIHII         = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number"
	AttrPharmacyHolder        = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder"
	AttrRecognisedPharmacy    = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:recognisedpharmacy:boolean"
	AttrPharmacyHolderNIHII11 = "urn:be:fgov:person:ssin:ehealth:1.0:pharmacy-holder:certified:nihii11"
	AttrDoctorBoolean         = "urn:be:fgov:person:ssin:doctor:boolean"
	AttrDoctorNIHII11         = "urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11"
	// AttrPharmacyHolderOfPharmacy says the pharmacy holder holds this pharmacy.
	AttrPharmacyHolderOfPharmacy = "urn:be:fgov:ehealth:1.0:pharmacy:nihii-number:person:ssin:ehealth:1.0:pharmacy-holder:boolean"
	AttrGivenName                = "urn:be:fgov:person:ssin:ehealth:1.0:givenname"
	AttrSurname                  = "urn:be:fgov:person:ssin:ehealth:1.0:surname"
	AttrDoctorFPSPH              = "urn:be:fgov:person:ssin:ehealth:1.0:fpsph:doctor:boolean"
)

// Attribute is a SAML attribute: claimed in a token request, or certified
// in an issued assertion.
type Attribute struct {
	Namespace, Name, Value string
}

// Identity is a care provider registered with the platform: its
// identification certificate is issued by the platform's care-provider CA
// (the STS trusts it) and the STS certifies its attributes.
type Identity struct {
	Kind IdentityKind
	Name string
	SSIN string // the natural person behind the identity (pharmacy holder, doctor)
	// NIHII is the pharmacy's 8-digit number for a Pharmacy, the doctor's
	// 11-digit number for a GP.
	NIHII string
	// NIHII11 is the natural person's 11-digit NIHII number.
	NIHII11     string
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
	Chain       []*x509.Certificate // Certificate, then its CA

	encOnce sync.Once // the encryption key behind the identity's ETKs
	encKey  *rsa.PrivateKey
	encErr  error
}

// Claims returns the attributes the identity claims in a token request
// (namespace NSIdentification).
func (i *Identity) Claims() []Attribute {
	a := []Attribute{
		{NSIdentification, AttrCertificateHolderSSIN, i.SSIN},
		{NSIdentification, AttrPersonSSIN, i.SSIN},
	}
	if i.Kind == Pharmacy {
		a = append(a,
			Attribute{NSIdentification, AttrPharmacyNIHII, i.NIHII},
			Attribute{NSIdentification, AttrPharmacyHolder, i.SSIN})
	}
	return a
}

// Certified returns the attributes the STS certifies for the identity
// (namespace NSCertified); a token request may ask for any of them.
func (i *Identity) Certified() []Attribute {
	switch i.Kind {
	case Pharmacy:
		return []Attribute{
			{NSCertified, AttrRecognisedPharmacy, "true"},
			{NSCertified, AttrPharmacyHolderNIHII11, i.NIHII11},
			{NSCertified, AttrPharmacyHolderOfPharmacy, "true"},
		}
	case GP:
		given, sur, _ := strings.Cut(i.Name, " ")
		return []Attribute{
			{NSCertified, AttrDoctorBoolean, "true"},
			{NSCertified, AttrDoctorNIHII11, i.NIHII11},
			{NSCertified, AttrGivenName, given},
			{NSCertified, AttrSurname, sur},
			{NSCertified, AttrDoctorFPSPH, "true"},
		}
	}
	return nil
}

// RequiredDesignators are the attribute designators (namespace and name) a token request
// for the identity must carry, as the official configuration of its profession asks them:
// the STS refuses a request that lacks one (samlp:RequestDenied). A pharmacy needs the seven
// of the Recip-e pharmacy configuration, a GP the doctor's seven.
func (i *Identity) RequiredDesignators() []Attribute {
	var out []Attribute
	switch i.Kind {
	case Pharmacy:
		out = []Attribute{
			{NSIdentification, AttrCertificateHolderSSIN, ""},
			{NSIdentification, AttrPharmacyNIHII, ""},
			{NSCertified, AttrRecognisedPharmacy, ""},
			{NSIdentification, AttrPersonSSIN, ""},
			{NSIdentification, AttrPharmacyHolder, ""},
			{NSCertified, AttrPharmacyHolderNIHII11, ""},
			{NSCertified, AttrPharmacyHolderOfPharmacy, ""},
		}
	case GP:
		out = []Attribute{
			{NSIdentification, AttrCertificateHolderSSIN, ""},
			{NSIdentification, AttrPersonSSIN, ""},
			{NSCertified, AttrDoctorBoolean, ""},
			{NSCertified, AttrDoctorNIHII11, ""},
			{NSCertified, AttrGivenName, ""},
			{NSCertified, AttrSurname, ""},
			{NSCertified, AttrDoctorFPSPH, ""},
		}
	}
	return out
}

// PEM returns the certificate chain and the PKCS#8 private key, PEM-encoded.
func (i *Identity) PEM() (certPEM, keyPEM []byte) {
	for _, c := range i.Chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(i.Key)
	if err != nil { // an *rsa.PrivateKey always marshals
		panic(err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PKCS12 returns the identity as a PKCS#12 keystore (key, certificate and
// CA) protected by password, the form eHealth distributes certificates in.
func (i *Identity) PKCS12(password string) ([]byte, error) {
	return pkcs12.Modern.Encode(i.Key, i.Certificate, i.Chain[1:], password)
}

// nihiiNumber returns a 6-digit base followed by its 2 check digits and,
// when qual != "", a 3-digit qualification.
func nihiiNumber(r *rand.Rand, qual string) string {
	base := 100000 + r.IntN(900000)
	return fmt.Sprintf("%06d%02d%s", base, 97-base%97, qual)
}

// NewIdentity registers a care provider of the given kind and returns its
// credentials. Safe for concurrent use.
func (p *Platform) NewIdentity(kind IdentityKind, name string) (*Identity, error) {
	if kind != Pharmacy && kind != GP {
		return nil, fmt.Errorf("platformtest: new identity: unknown kind %d", int(kind))
	}
	if name == "" {
		return nil, fmt.Errorf("platformtest: new identity: empty name")
	}
	p.idMu.Lock()
	n := len(p.identities)
	p.idMu.Unlock()
	r := rand.New(rand.NewPCG(uint64(p.cfg.Seed), uint64(n)+0x5eed))
	id := &Identity{Kind: kind, Name: name}
	birthday := time.Date(1950+r.IntN(50), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	id.SSIN = makeSSIN(birthday, 1+r.IntN(997))
	subject := pkix.Name{CommonName: name, SerialNumber: id.SSIN, Organization: []string{"platformtest care providers"}, Country: []string{"BE"}}
	switch kind {
	case Pharmacy:
		id.NIHII = nihiiNumber(r, "")
		id.NIHII11 = nihiiNumber(r, "000")
		subject.OrganizationalUnit = []string{"NIHII-PHARMACY=" + id.NIHII}
	case GP:
		id.NIHII = nihiiNumber(r, "004")
		id.NIHII11 = id.NIHII
		subject.OrganizationalUnit = []string{"NIHII=" + id.NIHII}
	}
	cert, key, err := p.pki.issue(p.providerCA, leaf{
		subject: subject,
		usage:   x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ext:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	id.Certificate, id.Key = cert, key
	id.Chain = []*x509.Certificate{cert, p.providerCA.cert}
	p.idMu.Lock()
	p.identities = append(p.identities, id)
	p.idByCert[fingerprint(cert)] = id
	p.idMu.Unlock()
	p.etk.registerIdentity(id)
	return id, nil
}

// Identities returns the registered care providers, oldest first.
func (p *Platform) Identities() []*Identity {
	p.idMu.Lock()
	defer p.idMu.Unlock()
	return append([]*Identity(nil), p.identities...)
}

func (p *Platform) identityByCert(c *x509.Certificate) *Identity {
	if c == nil {
		return nil
	}
	p.idMu.Lock()
	defer p.idMu.Unlock()
	return p.idByCert[fingerprint(c)]
}
