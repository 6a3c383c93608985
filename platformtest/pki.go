package platformtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// keyBits is the size of every RSA key the platform uses: realistic, and
// affordable because keys are generated once per process (see keyPool).
const keyBits = 2048

// keyPool hands out RSA keys. Generating a 2048-bit key costs tens to
// hundreds of milliseconds, so a key released by a closed Platform is reused
// by the next one in the same process; two live platforms never share a key.
var keyPool struct {
	mu   sync.Mutex
	free []*rsa.PrivateKey
}

func acquireKey() (*rsa.PrivateKey, error) {
	keyPool.mu.Lock()
	if n := len(keyPool.free); n > 0 {
		k := keyPool.free[n-1]
		keyPool.free = keyPool.free[:n-1]
		keyPool.mu.Unlock()
		return k, nil
	}
	keyPool.mu.Unlock()
	k, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("platformtest: generate rsa key: %w", err)
	}
	return k, nil
}

func releaseKeys(keys []*rsa.PrivateKey) {
	keyPool.mu.Lock()
	keyPool.free = append(keyPool.free, keys...)
	keyPool.mu.Unlock()
}

// authority is a certificate authority of the platform.
type authority struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

func (a *authority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

// pki creates the platform's certificates. Validity windows cover both the
// wall clock (TLS is checked against it) and the platform clock.
type pki struct {
	mu       sync.Mutex
	keys     []*rsa.PrivateKey // acquired, released at Close
	notBefor time.Time
	notAfter time.Time
	tag      string // distinguishes this platform's CA names from another's
}

func newPKI(now time.Time) (*pki, error) {
	wall := time.Now()
	lo, hi := wall, wall
	if now.Before(lo) {
		lo = now
	}
	if now.After(hi) {
		hi = now
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &pki{
		notBefor: lo.Add(-48 * time.Hour).Truncate(time.Second),
		notAfter: hi.Add(10 * 365 * 24 * time.Hour).Truncate(time.Second),
		tag:      hex.EncodeToString(b[:]),
	}, nil
}

func (p *pki) key() (*rsa.PrivateKey, error) {
	k, err := acquireKey()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.keys = append(p.keys, k)
	p.mu.Unlock()
	return k, nil
}

func (p *pki) release() {
	p.mu.Lock()
	keys := p.keys
	p.keys = nil
	p.mu.Unlock()
	releaseKeys(keys)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
}

func subjectKeyID(k *rsa.PrivateKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sum := sha256.Sum256(der)
	return sum[:20]
}

// newCA creates a self-signed CA named cn (suffixed with the platform tag).
func (p *pki) newCA(cn string) (*authority, error) {
	k, err := p.key()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn + " " + p.tag, Organization: []string{"platformtest"}, Country: []string{"BE"}},
		NotBefore:             p.notBefor,
		NotAfter:              p.notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          subjectKeyID(k),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, fmt.Errorf("platformtest: create ca %q: %w", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &authority{cert: c, key: k}, nil
}

// leaf describes an end-entity certificate to issue.
type leaf struct {
	subject pkix.Name
	usage   x509.KeyUsage
	ext     []x509.ExtKeyUsage
	ips     []net.IP
	dns     []string
	key     *rsa.PrivateKey // nil = a fresh key from the pool
}

func (p *pki) issue(ca *authority, l leaf) (*x509.Certificate, *rsa.PrivateKey, error) {
	k := l.key
	if k == nil {
		var err error
		if k, err = p.key(); err != nil {
			return nil, nil, err
		}
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:   sn,
		Subject:        l.subject,
		NotBefore:      p.notBefor,
		NotAfter:       p.notAfter,
		KeyUsage:       l.usage,
		ExtKeyUsage:    l.ext,
		IPAddresses:    l.ips,
		DNSNames:       l.dns,
		SubjectKeyId:   subjectKeyID(k),
		AuthorityKeyId: ca.cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("platformtest: issue certificate %q: %w", l.subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

// selfSigned creates a self-signed end-entity certificate with key k.
func (p *pki) selfSigned(subject pkix.Name, k *rsa.PrivateKey, usage x509.KeyUsage) (*x509.Certificate, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      subject,
		NotBefore:    p.notBefor,
		NotAfter:     p.notAfter,
		KeyUsage:     usage,
		SubjectKeyId: subjectKeyID(k),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func fingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }
