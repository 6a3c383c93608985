package connector

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ehgate/ehgate/bcp"
	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/sts"
)

// ServiceSTS is the short service-list name of the STS (SAML-P dialect); ServiceSTSWSTrust
// the WS-Trust STS's (Config.STSDialect = sts.DialectWSTrust).
const (
	ServiceSTS        = "iamsaml11tokenservice:v1"
	ServiceSTSWSTrust = "iamsecuritytokenservice:v1"
)

// Environment selects the platform's service list (docs/wire/servicelist.md).
type Environment int

// Environments. The zero value selects none: Config.ServiceListURL must then be set.
const (
	EnvironmentNone Environment = iota
	Production
	Acceptance
)

// String returns "none", "production" or "acceptance".
func (e Environment) String() string {
	switch e {
	case EnvironmentNone:
		return "none"
	case Production:
		return "production"
	case Acceptance:
		return "acceptance"
	}
	return fmt.Sprintf("Environment(%d)", int(e))
}

// Service-list base URLs of the real platform; the client appends ".sha2" and ".xml".
const (
	ProductionServiceListURL = "https://servicelist.ehealth.fgov.be/servicelist"
	AcceptanceServiceListURL = "https://servicelist-acpt.ehealth.fgov.be/servicelist"
	// ProductionStatusFeedURL is the status page's JSON feed (docs/wire/statusfeed.md).
	ProductionStatusFeedURL = "https://status.ehealth.fgov.be/nl/api/components/prod"
	// AcceptanceStatusFeedURL is the status page's feed of the acceptance platform. The feed
	// is undocumented: the path is the production one with the acceptance environment's
	// name ("acpt", as in the acceptance service list's host); check it before relying on it.
	AcceptanceStatusFeedURL = "https://status.ehealth.fgov.be/nl/api/components/acpt"
)

// PackageLicense is the software package's licence at the platform (CommonInput/Origin/Package).
type PackageLicense struct {
	Name     string // package name; optional
	Username string // licence user name; required by insurability and writes
	Password string // licence password; never logged
}

// Credentials say where the care provider's certificates are. Give loaded credentials, or a
// PKCS#12 keystore, or PEM files; the first that is set is used.
type Credentials struct {
	// Identification authenticates to the STS; HolderOfKey signs business calls with the token
	// (nil = Identification).
	Identification *sts.Credential
	HolderOfKey    *sts.Credential
	// PKCS12File and Password: a .p12 keystore as the platform delivers it.
	PKCS12File string
	Password   string // never logged
	// CertFile, KeyFile and ChainFile (optional): PEM files.
	CertFile, KeyFile, ChainFile string
}

// Preset is the kind of care provider, which decides the attributes asked of the STS.
type Preset int

// Presets, each the sts preset of the same name (which cites its source). The zero value is
// PresetPharmacy. PresetGP is a doctor.
const (
	PresetPharmacy Preset = iota
	PresetGP
	PresetNurse
	PresetDentist
	PresetPhysiotherapist
	PresetMidwife
	PresetMedicalHouse
	PresetGuardPost
	PresetSortingCenter
	PresetOfficeDoctors
	PresetGroupOfNurses
)

var presets = []struct {
	name  string
	attrs *sts.AttributeSet
}{
	PresetPharmacy:        {"pharmacy", &sts.PresetPharmacy},
	PresetGP:              {"gp", &sts.PresetDoctor},
	PresetNurse:           {"nurse", &sts.PresetNurse},
	PresetDentist:         {"dentist", &sts.PresetDentist},
	PresetPhysiotherapist: {"physiotherapist", &sts.PresetPhysiotherapist},
	PresetMidwife:         {"midwife", &sts.PresetMidwife},
	PresetMedicalHouse:    {"medicalhouse", &sts.PresetMedicalHouse},
	PresetGuardPost:       {"guardpost", &sts.PresetGuardPost},
	PresetSortingCenter:   {"sortingcenter", &sts.PresetSortingCenter},
	PresetOfficeDoctors:   {"officedoctors", &sts.PresetOfficeDoctors},
	PresetGroupOfNurses:   {"groupofnurses", &sts.PresetGroupOfNurses},
}

// String returns the preset's name ("pharmacy", "gp", "nurse", ...).
func (p Preset) String() string {
	if p >= 0 && int(p) < len(presets) {
		return presets[p].name
	}
	return fmt.Sprintf("Preset(%d)", int(p))
}

// Attributes returns the preset's attribute set (a copy a vendor may change), false for an
// unknown preset.
func (p Preset) Attributes() (sts.AttributeSet, bool) {
	if p < 0 || int(p) >= len(presets) {
		return sts.AttributeSet{}, false
	}
	a := presets[p].attrs
	return sts.AttributeSet{
		Claimed:   append([]sts.ClaimedAttribute(nil), a.Claimed...),
		Certified: append([]sts.Designator(nil), a.Certified...),
	}, true
}

// Identity is who the client speaks for.
type Identity struct {
	Preset Preset // zero = PresetPharmacy
	// NIHII is the pharmacy's or doctor's INAMI/RIZIV number; required.
	NIHII string
	// SSIN is the certificate holder's national number; required by both presets.
	SSIN string
	// HolderNIHII is the pharmacy holder's own NIHII (the pharmacist's, not the pharmacy's).
	// Insurability v2 names it as the care provider (Quality PHARMACY-HOLDER) with the pharmacy
	// as its Organization, as the official pharmacy integration does. "" = the pharmacy's NIHII
	// is the care provider (Quality PHARMACY), without Organization.
	HolderNIHII string
	// Attributes replaces the preset's attribute set (another profession); nil = the preset's.
	Attributes *sts.AttributeSet
}

// Proxy is the connector's one proxy policy, for every request it sends. Zero value: the
// environment's proxy, as net/http reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY (requests to
// loopback addresses never go through it). Pharmacies often sit behind one.
type Proxy struct {
	// URL, when set, is the proxy of every request whatever the environment says
	// (http://, https:// or socks5://; user:password@ for a proxy that asks for them).
	URL string
	// Direct connects without any proxy, ignoring the environment. URL must then be "".
	Direct bool
}

// policy returns the http.Transport.Proxy function of p (URL already validated).
func (p Proxy) policy() func(*http.Request) (*url.URL, error) {
	switch {
	case p.Direct:
		return nil
	case p.URL != "":
		u, _ := url.Parse(p.URL)
		return http.ProxyURL(u)
	default:
		return http.ProxyFromEnvironment
	}
}

// String shows the policy with the proxy's password, if any, redacted.
func (p Proxy) String() string {
	switch {
	case p.Direct:
		return "direct"
	case p.URL != "":
		if u, err := url.Parse(p.URL); err == nil {
			return u.Redacted()
		}
		return "[unparsable proxy URL]"
	default:
		return "environment"
	}
}

// Format prints the policy as String does (the password redacted).
func (p Proxy) Format(f fmt.State, verb rune) { fmt.Fprint(f, p.String()) }

func (p Proxy) validate() error {
	if p.URL == "" {
		return nil
	}
	if p.Direct {
		return errors.New("set URL or Direct, not both")
	}
	u, err := url.Parse(p.URL)
	if err != nil || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	switch u.Scheme {
	case "http", "https", "socks5":
		return nil
	}
	return errors.New("scheme must be http, https or socks5")
}

// Policy is how the local store serves one priority function.
type Policy struct {
	// MaxAge is how old a cached answer may be and still be served when the platform cannot
	// answer. 0 = the function's default: 30 days for insurability (docs/wire/insurability.md);
	// for ETKs the certificate's own validity is the limit and MaxAge is not used.
	MaxAge time.Duration
	// RefreshAfter (ETK only) is the age after which a cached ETK is still served but refreshed
	// in the background. 0 = 8 h.
	RefreshAfter time.Duration
	// AttemptTimeout bounds one attempt at one endpoint. 0 = Timeouts.Attempt.
	AttemptTimeout time.Duration
	// CallTimeout bounds the live part of one call (token, every endpoint, retries); when it
	// runs out the local store answers. 0 = 2 × AttemptTimeout (one hanging endpoint and a
	// good one).
	CallTimeout time.Duration
	// NoStore turns the local store off for this function (no fallback answers).
	NoStore bool
}

// Policies are the per-function policies.
type Policies struct {
	Insurability        Policy
	GenericInsurability Policy
	ETK                 Policy
}

// Timeouts bound the network. Zero fields take the defaults given.
type Timeouts struct {
	// Connect bounds TCP and TLS set-up. 0 = 2 s (the official connector's 30 s is too long for a counter).
	Connect time.Duration
	// Attempt bounds one attempt at one endpoint. 0 = 5 s.
	Attempt time.Duration
}

// Config is everything a Client needs. Zero fields take the defaults their comments give;
// Validate names the first bad field.
type Config struct {
	// Environment selects the real platform's service list. Ignored when ServiceListURL is set.
	Environment Environment
	// ServiceListURL is the service list's base URL (".sha2" and ".xml" are appended), for a
	// test platform or a proxy. "" = the Environment's URL.
	ServiceListURL string
	// ServiceListRoots pins the CA of the service list's signer; required.
	ServiceListRoots *x509.CertPool
	// ServiceListSigner pins the signer itself (subject and/or fingerprints). The zero value
	// pins the platform's SERVICELIST certificate subject (DefaultServiceListSubject).
	ServiceListSigner ServiceListSigner
	// ServiceListEnvironment is the @Environment a list must carry to be adopted, in the
	// platform's spelling ("Production", "Acceptation"). "" = "Production" or "Acceptation"
	// following Environment when ServiceListURL is empty (the real platform's list); not
	// checked when ServiceListURL is set (a test platform: set it for a proxy of the real one).
	ServiceListEnvironment string
	// ServiceListPoll is how often the list's .sha2 is checked. 0 = 60 s.
	ServiceListPoll time.Duration
	// ServiceListBuiltin is a service list (the signed XML as published, e.g. embedded with
	// go:embed) compiled into the vendor's program: the last resort when no list was stored
	// in CacheDir and the network gives none, for instance at the very first start during an
	// outage. A stored list that is newer wins over it, and the list from the network
	// replaces it as soon as one is fetched. It is trusted as compiled in (its signature is
	// not checked, so an old list whose signer has expired still serves) but must parse:
	// Validate fails otherwise. nil = none.
	ServiceListBuiltin []byte

	// TLSRoots are the CAs of the platform's TLS certificates. nil = the system roots.
	// Ignored when WithHTTPClient is given.
	TLSRoots *x509.CertPool
	// Proxy is how every request (service list, status feed, STS, services) reaches the
	// platform. The zero value = the environment's proxy. Ignored when WithHTTPClient or
	// WithTransport is given: the vendor's transport decides.
	Proxy Proxy
	// STSRoots is the trust pool of the STS's assertion signatures; required.
	STSRoots *x509.CertPool
	// STSDialect is the protocol of the token request: sts.DialectSAMLP (zero, the official
	// connector's, service ServiceSTS) or sts.DialectWSTrust (service ServiceSTSWSTrust).
	STSDialect sts.Dialect
	// STSSigner pins the STS's signing certificate among those STSRoots trusts (by subject
	// or fingerprint); zero = sts.PlatformSTS, the platform's STS of production and
	// acceptance.
	STSSigner sts.SignerPin

	// Credentials of the care provider; required.
	Credentials Credentials
	// Identity says who the client speaks for; NIHII and SSIN are required.
	Identity Identity
	// Package is the software's licence at the platform.
	Package PackageLicense
	// IsTest sets CommonInput/Request/IsTest on business requests.
	IsTest bool
	// TokenLifetime is the token validity asked of the STS (the STS decides). 0 = 24 h.
	TokenLifetime time.Duration

	// CacheDir holds the encrypted local store (answers and outbox) and the last good service
	// list. Required unless StoreBackend is set: fallback needs a durable store.
	CacheDir string
	// StoreBackend, if set, keeps the encrypted store (answers, outbox, tokens and the last
	// good service list) in a database shared by every instance of a fleet instead of
	// CacheDir (a *pgstore.DB; see the cookbook's "running a fleet"): an answer stored by one
	// instance serves a fallback on any, any instance replays queued writes, and when it
	// also implements sts.RenewalLock the instances renew the identity's token once for all.
	// Records are encrypted by the client with CacheKeys either way. nil = CacheDir. The
	// Client does not close it.
	StoreBackend cache.Backend
	// StoreTenant names this client's records in StoreBackend (for example one per pharmacy
	// hosted on the database): 1 to 64 letters, digits, '.', '_' or '-'. Every instance serving
	// the same pharmacy uses the same name. "" = "default".
	StoreTenant string
	// StoreLease is, with StoreBackend, how long the partitions of queued writes an instance
	// is replaying stay its own without news from it: an instance that dies leaves them to
	// the others after at most StoreLease. It must exceed a write's send (two attempt
	// timeouts). 0 = 30 s.
	StoreLease time.Duration
	// DamagedStore says what New does with a damaged store file (truncated, garbled): zero =
	// DamagedStoreStartFresh (moved aside with a timestamp, a fresh store started),
	// DamagedStoreLeave (left alone; the client runs without a store). Whatever it says, a
	// store that cannot be opened never stops the client: live calls go on, and Status().Store
	// says why there is no store; a file under an unknown key is never touched.
	DamagedStore DamagedStore
	// CacheKeys are the 32-byte keys of the store; the first encrypts, all decrypt (rotation).
	// Required.
	CacheKeys [][]byte

	// Policies per priority function.
	Policies Policies
	// Timeouts of the network.
	Timeouts Timeouts
	// FaultCodes are the SOAP fault codes that move a call to the next endpoint.
	// nil = SOA-01001, SOA-01002, SOA-02001, SOA-02002 (docs/switching.md).
	FaultCodes []string
	// BCP tunes the breakers, endpoint choice, retry budget and per-service call policies
	// (bcp.Config; its zero value = bcp's defaults). The connector sets its Classifier and
	// ServiceList, and per-service attempt timeouts from Policies unless BCP.Services names
	// the service.
	BCP bcp.Config

	// StatusFeedURL is the status page's JSON feed. "" = not polled (use
	// ProductionStatusFeedURL for the real platform).
	StatusFeedURL string
	// StatusComponents maps a feed component (its id or name_nl) to the short service names it
	// covers, e.g. {"MyCareNet Insurability": {"insurability:v2"}}. A component in Major Outage
	// puts its services in fallback at once.
	StatusComponents map[string][]string
	// StatusPoll is how often the feed is read. 0 = 60 s.
	StatusPoll time.Duration
}

// DefaultConfig returns a Config with every default written out, for the production
// platform; the vendor adds credentials, identity, licence, cache and roots.
func DefaultConfig() Config { return DefaultConfigFor(Production) }

// DefaultConfigFor returns a Config with every default written out for env (Production or
// Acceptance; anything else is Production): its service list and status feed, the feed's
// known components mapped to their services (DefaultStatusComponents). The vendor adds
// credentials, identity, licence, cache and roots.
func DefaultConfigFor(env Environment) Config {
	feed := ProductionStatusFeedURL
	if env == Acceptance {
		feed = AcceptanceStatusFeedURL
	} else {
		env = Production
	}
	return Config{
		Environment:     env,
		ServiceListPoll: 60 * time.Second,
		TokenLifetime:   24 * time.Hour,
		Policies: Policies{
			Insurability:        Policy{MaxAge: 30 * 24 * time.Hour},
			GenericInsurability: Policy{MaxAge: 30 * 24 * time.Hour},
			ETK:                 Policy{RefreshAfter: 8 * time.Hour},
		},
		Timeouts:         Timeouts{Connect: 2 * time.Second, Attempt: 5 * time.Second},
		StatusFeedURL:    feed,
		StatusComponents: DefaultStatusComponents(),
		StatusPoll:       60 * time.Second,
	}
}

// ErrConfig is the sentinel of an invalid Config.
var ErrConfig = errors.New("connector: invalid config")

// ConfigError names the bad field of a Config.
type ConfigError struct {
	Field  string
	Reason string
}

// Error names the field and what is wrong with it.
func (e *ConfigError) Error() string { return "connector: config: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Validate checks c and returns a *ConfigError naming the first bad field.
func (c Config) Validate() error {
	bad := func(field, reason string) error { return &ConfigError{Field: field, Reason: reason} }
	if c.ServiceListURL == "" {
		if c.Environment != Production && c.Environment != Acceptance {
			return bad("Environment", "set Production or Acceptance, or ServiceListURL")
		}
	} else if err := checkHTTPS(c.ServiceListURL); err != nil {
		return bad("ServiceListURL", err.Error())
	}
	if c.ServiceListRoots == nil {
		return bad("ServiceListRoots", "required: the CA that signs the service list")
	}
	if i := c.ServiceListSigner.badFingerprint(); i >= 0 {
		return bad(fmt.Sprintf("ServiceListSigner.Fingerprints[%d]", i), "not a hex SHA-256 fingerprint")
	}
	if len(c.ServiceListBuiltin) > 0 {
		if _, err := bcp.ParseServiceList(c.ServiceListBuiltin); err != nil {
			return bad("ServiceListBuiltin", "not a service list: "+err.Error())
		}
	}
	if c.STSRoots == nil {
		return bad("STSRoots", "required: the CA that signs STS assertions")
	}
	if err := c.Proxy.validate(); err != nil {
		return bad("Proxy.URL", err.Error())
	}
	cr := c.Credentials
	switch {
	case cr.Identification != nil:
	case cr.PKCS12File != "":
	case cr.CertFile != "" || cr.KeyFile != "":
		if cr.CertFile == "" {
			return bad("Credentials.CertFile", "required with KeyFile")
		}
		if cr.KeyFile == "" {
			return bad("Credentials.KeyFile", "required with CertFile")
		}
	default:
		return bad("Credentials", "give Identification, PKCS12File, or CertFile and KeyFile")
	}
	if _, ok := c.Identity.Preset.Attributes(); !ok {
		return bad("Identity.Preset", "unknown preset")
	}
	if c.STSDialect != sts.DialectSAMLP && c.STSDialect != sts.DialectWSTrust {
		return bad("STSDialect", "unknown dialect")
	}
	if c.Identity.NIHII == "" {
		return bad("Identity.NIHII", "required")
	}
	if !isDigitsRange(c.Identity.NIHII, 8, 11) {
		return bad("Identity.NIHII", "must be 8 to 11 digits")
	}
	if c.Identity.SSIN == "" {
		return bad("Identity.SSIN", "required")
	}
	if err := ValidateSSIN(c.Identity.SSIN); err != nil {
		return bad("Identity.SSIN", err.(*SSINError).Reason)
	}
	if c.CacheDir == "" && c.StoreBackend == nil {
		return bad("CacheDir", "required (or StoreBackend): fallback needs a durable store")
	}
	if c.StoreLease < 0 {
		return bad("StoreLease", "must not be negative")
	}
	if c.StoreTenant != "" {
		if err := (cache.Config{Backend: c.StoreBackend, Dir: c.CacheDir, Tenant: c.StoreTenant, Keys: []cache.Key{{ID: "k", Secret: make([]byte, 32)}}}).Validate(); err != nil {
			return bad("StoreTenant", "must be 1 to 64 letters, digits, '.', '_' or '-'")
		}
	}
	if c.DamagedStore != DamagedStoreStartFresh && c.DamagedStore != DamagedStoreLeave {
		return bad("DamagedStore", "unknown value")
	}
	if len(c.CacheKeys) == 0 {
		return bad("CacheKeys", "required: the store is encrypted")
	}
	for i, k := range c.CacheKeys {
		if len(k) != 32 {
			return bad(fmt.Sprintf("CacheKeys[%d]", i), "must be 32 bytes")
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ServiceListPoll", c.ServiceListPoll}, {"StatusPoll", c.StatusPoll}, {"TokenLifetime", c.TokenLifetime},
		{"Timeouts.Connect", c.Timeouts.Connect}, {"Timeouts.Attempt", c.Timeouts.Attempt},
		{"Policies.Insurability.MaxAge", c.Policies.Insurability.MaxAge},
		{"Policies.GenericInsurability.MaxAge", c.Policies.GenericInsurability.MaxAge},
		{"Policies.ETK.RefreshAfter", c.Policies.ETK.RefreshAfter},
		{"Policies.Insurability.AttemptTimeout", c.Policies.Insurability.AttemptTimeout},
		{"Policies.GenericInsurability.AttemptTimeout", c.Policies.GenericInsurability.AttemptTimeout},
		{"Policies.ETK.AttemptTimeout", c.Policies.ETK.AttemptTimeout},
		{"Policies.Insurability.CallTimeout", c.Policies.Insurability.CallTimeout},
		{"Policies.GenericInsurability.CallTimeout", c.Policies.GenericInsurability.CallTimeout},
		{"Policies.ETK.CallTimeout", c.Policies.ETK.CallTimeout},
	} {
		if d.v < 0 {
			return bad(d.name, "negative")
		}
	}
	if c.StatusFeedURL != "" {
		if err := checkHTTPS(c.StatusFeedURL); err != nil {
			return bad("StatusFeedURL", err.Error())
		}
	}
	for comp, svcs := range c.StatusComponents {
		if comp == "" || len(svcs) == 0 {
			return bad("StatusComponents", "each component needs a name and at least one service")
		}
		for _, svc := range svcs {
			if !slices.Contains(Services(), svc) {
				return bad("StatusComponents", fmt.Sprintf("component %q: unknown service %q (one of connector.Services())", comp, svc))
			}
		}
	}
	return nil
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ServiceListURL == "" {
		// The platform's spelling of its environments in the list's @Environment.
		url, env := ProductionServiceListURL, "Production"
		if c.Environment == Acceptance {
			url, env = AcceptanceServiceListURL, "Acceptation"
		}
		c.ServiceListURL = url
		if c.ServiceListEnvironment == "" {
			c.ServiceListEnvironment = env
		}
	}
	if c.ServiceListPoll == 0 {
		c.ServiceListPoll = d.ServiceListPoll
	}
	if c.StatusPoll == 0 {
		c.StatusPoll = d.StatusPoll
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = d.TokenLifetime
	}
	if c.Timeouts.Connect == 0 {
		c.Timeouts.Connect = d.Timeouts.Connect
	}
	if c.Timeouts.Attempt == 0 {
		c.Timeouts.Attempt = d.Timeouts.Attempt
	}
	for _, p := range []*Policy{&c.Policies.Insurability, &c.Policies.GenericInsurability} {
		if p.MaxAge == 0 {
			p.MaxAge = 30 * 24 * time.Hour
		}
	}
	if c.Policies.ETK.RefreshAfter == 0 {
		c.Policies.ETK.RefreshAfter = d.Policies.ETK.RefreshAfter
	}
	for _, p := range []*Policy{&c.Policies.Insurability, &c.Policies.GenericInsurability, &c.Policies.ETK} {
		if p.AttemptTimeout == 0 {
			p.AttemptTimeout = c.Timeouts.Attempt
		}
		if p.CallTimeout == 0 {
			p.CallTimeout = 2 * p.AttemptTimeout
		}
	}
	return c
}

func checkHTTPS(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "https" || u.Host == "" {
		return errors.New("must be an https URL")
	}
	return nil
}

func isDigitsRange(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	return isDigits(s, len(s))
}
