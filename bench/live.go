package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehgate/ehgate/connector"
	"github.com/ehgate/ehgate/sts"
)

// Platform is what a live-call measurement points ehgate at: the stand-in's service list,
// its roots, a registered pharmacy's keystore and insured patients.
type Platform struct {
	ServiceListURL string
	StatusFeedURL  string // "" = not polled
	ListRoots      *x509.CertPool
	TLSRoots       *x509.CertPool
	STSRoots       *x509.CertPool
	P12File        string
	Password       string
	NIHII          string   // the pharmacy's NIHII
	Patients       []string // SSINs of insured patients, asked in turn
}

// Sent is one insurability request as it left ehgate's HTTP client: what the floor posts.
type Sent struct {
	URL         string
	SOAPAction  string
	ContentType string
	Body        []byte
}

// capture is a RoundTripper that, when armed, keeps a copy of the next insurability
// request's body. Disarmed it costs one atomic load: the measured calls run disarmed.
type capture struct {
	rt    http.RoundTripper
	armed atomic.Bool
	mu    sync.Mutex
	got   *Sent
}

var insurabilityAction = `"` + connector.ActionInsurability + `"`

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.armed.Load() && r.Header.Get("SOAPAction") == insurabilityAction {
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		c.armed.Store(false)
		c.mu.Lock()
		c.got = &Sent{URL: r.URL.String(), SOAPAction: r.Header.Get("SOAPAction"), ContentType: r.Header.Get("Content-Type"), Body: body}
		c.mu.Unlock()
	}
	return c.rt.RoundTrip(r)
}

// readBody copies r's body and leaves r able to send it.
func readBody(r *http.Request) ([]byte, error) {
	if r.GetBody != nil {
		rc, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// take returns and forgets what was captured (nil if nothing).
func (c *capture) take() *Sent {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.got
	c.got = nil
	return s
}

// Rig runs the two things a live-call measurement compares, on one platform:
//   - Live: ehgate's Client.Insurability, live, its answer stored as in production;
//   - Floor: the least any client can do for the same call: one RSA PKCS#1 v1.5 SHA-256
//     signature of a digest with the holder-of-key's key, and an HTTPS POST of the exact
//     bytes ehgate sent (Capture), reading the whole answer, through a transport built by
//     connector.NewTransport (the keep-alive settings of ehgate's own).
//
// Not safe for concurrent use: the measurement is sequential.
type Rig struct {
	client   *connector.Client
	live     *capture
	floor    *capture
	floorRT  *http.Transport
	floorHC  *http.Client
	key      *rsa.PrivateKey
	digest   [32]byte
	patients []string
	next     int // next patient
	pairs    int // pairs of batches measured: who goes first alternates
}

// NewRig builds ehgate's client on p (its store in storeDir) and the floor's HTTP client.
func NewRig(p Platform, storeDir string) (*Rig, error) {
	if len(p.Patients) == 0 {
		return nil, errors.New("bench: no insured patient to ask about")
	}
	cred, err := sts.LoadPKCS12(p.P12File, p.Password, sts.LoadOptions{})
	if err != nil {
		return nil, err
	}
	key, ok := cred.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("bench: the keystore's key is a %T, not RSA", cred.Key)
	}
	storeKey := make([]byte, 32)
	if _, err := rand.Read(storeKey); err != nil {
		return nil, err
	}
	const connect = 2 * time.Second // connector.DefaultConfig's Timeouts.Connect
	cfg := connector.DefaultConfig()
	cfg.ServiceListURL = p.ServiceListURL
	cfg.ServiceListRoots = p.ListRoots
	cfg.STSRoots = p.STSRoots
	cfg.TLSRoots = p.TLSRoots
	cfg.StatusFeedURL = p.StatusFeedURL
	cfg.Credentials = connector.Credentials{PKCS12File: p.P12File, Password: p.Password}
	// The holder's SSIN is the keystore certificate's serial number, as the stand-in issues it.
	cfg.Identity = connector.Identity{Preset: connector.PresetPharmacy, NIHII: p.NIHII, SSIN: cred.Certificate.Subject.SerialNumber}
	cfg.Package = connector.PackageLicense{Name: "ehgate-bench", Username: "vendor", Password: "licence"}
	cfg.IsTest = true
	cfg.CacheDir = storeDir
	cfg.CacheKeys = [][]byte{storeKey}
	cfg.Timeouts.Connect = connect

	// ehgate's own transport (what New builds without WithTransport), wrapped by capture.
	liveRT := connector.NewTransport(p.TLSRoots, connect)
	r := &Rig{
		live:     &capture{rt: liveRT},
		floorRT:  connector.NewTransport(p.TLSRoots, connect),
		key:      key,
		digest:   sha256.Sum256([]byte("signed info")),
		patients: p.Patients,
	}
	r.floor = &capture{rt: r.floorRT}
	r.floorHC = &http.Client{Transport: r.floor, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r.client, err = connector.New(cfg, connector.WithTransport(r.live))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Close closes ehgate's client and the floor's idle connections.
func (r *Rig) Close() error {
	r.floorRT.CloseIdleConnections()
	return r.client.Close()
}

// KeyBits is the size of the holder-of-key's RSA key.
func (r *Rig) KeyBits() int { return r.key.N.BitLen() }

// callTimeout bounds each call of either kind, as a counter's software would.
const callTimeout = 10 * time.Second

// Live asks ehgate about the next patient. An answer that is not live (from the store) is
// an error: it would not measure a live call.
func (r *Rig) Live(ctx context.Context) error {
	ssin := r.patients[r.next%len(r.patients)]
	r.next++
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := r.client.Insurability(ctx, connector.InsurabilityRequest{SSIN: ssin})
	if err != nil {
		return err
	}
	if res.Source != connector.SourceLive {
		return fmt.Errorf("bench: answer from %v, not live", res.Source)
	}
	return nil
}

// Capture makes one live call and returns the request ehgate sent for it.
func (r *Rig) Capture(ctx context.Context) (*Sent, error) {
	r.live.take()
	r.live.armed.Store(true)
	err := r.Live(ctx)
	r.live.armed.Store(false)
	if err != nil {
		return nil, err
	}
	s := r.live.take()
	if s == nil {
		return nil, errors.New("bench: the live call sent no insurability request")
	}
	return s, nil
}

// Floor signs a digest and posts s, reading the whole answer; it returns the answer's size.
func (r *Rig) Floor(ctx context.Context, s *Sent) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := rsa.SignPKCS1v15(rand.Reader, r.key, crypto.SHA256, r.digest[:]); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(s.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", s.ContentType)
	req.Header.Set("SOAPAction", s.SOAPAction)
	resp, err := r.floorHC.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return len(b), fmt.Errorf("bench: floor post: http status %d", resp.StatusCode)
	}
	return len(b), nil
}

// Side is what one kind of call cost over the measured batches.
type Side struct {
	Calls   int
	CPU     time.Duration // user + system CPU of the process (getrusage)
	Mallocs uint64        // runtime.MemStats.Mallocs
	Bytes   uint64        // runtime.MemStats.TotalAlloc
}

// CPUPerCall is the mean client CPU of one call.
func (s Side) CPUPerCall() time.Duration {
	if s.Calls == 0 {
		return 0
	}
	return s.CPU / time.Duration(s.Calls)
}

// AllocsPerCall and BytesPerCall are the mean heap allocations of one call.
func (s Side) AllocsPerCall() float64 { return float64(s.Mallocs) / float64(max(s.Calls, 1)) }

// BytesPerCall is the mean bytes allocated by one call.
func (s Side) BytesPerCall() float64 { return float64(s.Bytes) / float64(max(s.Calls, 1)) }

// Result is a measurement: both sides and the size of what ehgate sent.
type Result struct {
	Live, Floor  Side
	RequestBytes int  // size of the last request ehgate sent
	AnswerBytes  int  // size of the last answer the floor read
	CPUMeasured  bool // false where getrusage is not read (CPU fields are then 0)
	// PairRatios holds, for each pair of batches, ehgate's CPU over the floor's: their median
	// is less moved than Ratio by a background task (a store commit, a GC cycle) that happens
	// to fall in one batch.
	PairRatios []float64
}

// MedianRatio is the median of PairRatios (0 without any).
func (r Result) MedianRatio() float64 {
	if len(r.PairRatios) == 0 {
		return 0
	}
	x := slices.Clone(r.PairRatios)
	slices.Sort(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// Ratio is ehgate's CPU per call over the floor's.
func (r Result) Ratio() float64 {
	if r.Floor.CPU == 0 {
		return 0
	}
	return float64(r.Live.CPUPerCall()) / float64(r.Floor.CPUPerCall())
}

// String is one line of figures.
func (r Result) String() string {
	return fmt.Sprintf("live %.0f µs/call %.0f allocs %.0f B; floor %.0f µs/call %.0f allocs %.0f B; ratio %.3f (median of %d pairs %.3f); request %d B, answer %d B",
		us(r.Live.CPUPerCall()), r.Live.AllocsPerCall(), r.Live.BytesPerCall(),
		us(r.Floor.CPUPerCall()), r.Floor.AllocsPerCall(), r.Floor.BytesPerCall(),
		r.Ratio(), len(r.PairRatios), r.MedianRatio(), r.RequestBytes, r.AnswerBytes)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Measure runs batches pairs of batches of batch calls each, ehgate's and the floor's
// alternating (ABBA order, so drift in the machine's load falls on both alike), and adds
// their cost to res. Before each floor batch one unmeasured live call captures the bytes
// the floor posts, so they carry a fresh timestamp. Calls are sequential and warm.
func (r *Rig) Measure(ctx context.Context, batches, batch int, res *Result) error {
	res.CPUMeasured = true
	for range batches {
		liveFirst := r.pairs%2 == 0
		r.pairs++
		live0, floor0 := res.Live.CPU, res.Floor.CPU
		for k := range 2 {
			if (k == 0) == liveFirst {
				if err := measure(&res.Live, batch, func() error { return r.Live(ctx) }, &res.CPUMeasured); err != nil {
					return err
				}
				continue
			}
			s, err := r.Capture(ctx)
			if err != nil {
				return err
			}
			res.RequestBytes = len(s.Body)
			if err := measure(&res.Floor, batch, func() error {
				n, err := r.Floor(ctx, s)
				res.AnswerBytes = n
				return err
			}, &res.CPUMeasured); err != nil {
				return err
			}
		}
		if f := res.Floor.CPU - floor0; f > 0 {
			res.PairRatios = append(res.PairRatios, float64(res.Live.CPU-live0)/float64(f))
		}
	}
	return nil
}

// measure runs call n times and adds its CPU and allocations to side. ReadMemStats stops
// the world: it is read outside the CPU window.
func measure(side *Side, n int, call func() error, cpuOK *bool) error {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	c0, ok0 := processCPU()
	for range n {
		if err := call(); err != nil {
			return err
		}
	}
	c1, ok1 := processCPU()
	runtime.ReadMemStats(&m1)
	*cpuOK = *cpuOK && ok0 && ok1
	side.Calls += n
	side.CPU += c1 - c0
	side.Mallocs += m1.Mallocs - m0.Mallocs
	side.Bytes += m1.TotalAlloc - m0.TotalAlloc
	return nil
}
