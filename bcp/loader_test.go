package bcp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/soap"
)

// loaderRig is a Loader against a listServer with a step clock, a file store and an
// observed logger.
type loaderRig struct {
	srv    *listServer
	clock  *stepClock
	store  *FileListStore
	logs   *observer.ObservedLogs
	loader *Loader

	mu      sync.Mutex
	changes []*ServiceList
}

func newLoaderRig(t *testing.T, served []byte, mutate func(*LoaderConfig)) *loaderRig {
	t.Helper()
	trusted, _ := testListPKIs(t)
	r := &loaderRig{
		srv:   newListServer(t, served),
		clock: newStepClock(testLoaderNow),
		store: NewFileListStore(filepath.Join(t.TempDir(), "servicelist.xml")),
	}
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	cfg := LoaderConfig{
		BaseURL: r.srv.baseURL(),
		Verify:  soapListVerifier(trusted.roots, testListTime),
		Store:   r.store,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	l, err := NewLoader(cfg, WithHTTPClient(r.srv.srv.Client()), WithClock(r.clock), WithLogger(zap.New(core)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	r.loader = l
	l.OnChange(func(sl *ServiceList) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.changes = append(r.changes, sl)
	})
	return r
}

func (r *loaderRig) changeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes)
}

func (r *loaderRig) warnings(msg string) []observer.LoggedEntry {
	return r.logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage(msg).All()
}

func TestLoader_DownloadsXMLOnlyWhenHashChanges(t *testing.T) {
	trusted, _ := testListPKIs(t)
	first := signList(t, trusted, unsignedList(testListTime, true))
	r := newLoaderRig(t, first, nil)
	require.Nil(t, r.loader.Current(), "no stored or builtin list")

	// The first check runs at once.
	r.clock.WaitScheduled(t, 1)
	sha2, xml := r.srv.counts()
	require.Equal(t, [2]int{1, 1}, [2]int{sha2, xml})
	cur := r.loader.Current()
	require.NotNil(t, cur)
	require.Equal(t, first, cur.Raw)
	require.Equal(t, ListFromNetwork, r.loader.Source())
	require.Equal(t, 1, r.changeCount())
	stored, err := r.store.Load()
	require.NoError(t, err)
	require.Equal(t, first, stored, "the adopted list is persisted")
	st := r.loader.Status()
	require.NoError(t, st.LastErr)
	require.Equal(t, testLoaderNow, st.LastSuccess)

	// Not before the interval…
	r.clock.Advance(DefaultListInterval - time.Second)
	require.Equal(t, 1, r.clock.Pending())
	sha2, xml = r.srv.counts()
	require.Equal(t, [2]int{1, 1}, [2]int{sha2, xml})

	// …then only the .sha2 while it is unchanged, on every interval (not only in BCP mode).
	r.clock.Advance(time.Second)
	r.clock.WaitScheduled(t, 2)
	sha2, xml = r.srv.counts()
	require.Equal(t, [2]int{2, 1}, [2]int{sha2, xml})
	for i := 3; i <= 4; i++ {
		r.clock.Advance(DefaultListInterval)
		r.clock.WaitScheduled(t, i)
		sha2, xml = r.srv.counts()
		require.Equal(t, [2]int{i, 1}, [2]int{sha2, xml})
	}
	require.Same(t, cur, r.loader.Current())
	require.Equal(t, 1, r.changeCount())

	// A new list: the .sha2 changes, the .xml is downloaded once and adopted.
	second := signList(t, trusted, unsignedList(testListTime.Add(time.Hour), false))
	r.srv.set(second, "")
	r.clock.Advance(DefaultListInterval)
	r.clock.WaitScheduled(t, 5)
	sha2, xml = r.srv.counts()
	require.Equal(t, [2]int{5, 2}, [2]int{sha2, xml})
	cur = r.loader.Current()
	require.Equal(t, second, cur.Raw)
	ins, ok := cur.Lookup("insurability:v2")
	require.True(t, ok)
	require.Equal(t, StatusInactive, ins.Endpoints[0].Status)
	require.Equal(t, 2, r.changeCount())
	require.Same(t, cur, r.changes[1])
	stored, err = r.store.Load()
	require.NoError(t, err)
	require.Equal(t, second, stored)

	r.clock.Advance(DefaultListInterval)
	r.clock.WaitScheduled(t, 6)
	sha2, xml = r.srv.counts()
	require.Equal(t, [2]int{6, 2}, [2]int{sha2, xml})
	require.Len(t, r.logs.FilterMessage("service list adopted").All(), 2)
}

func TestLoader_SendsIfNoneMatch(t *testing.T) {
	trusted, _ := testListPKIs(t)
	first := signList(t, trusted, unsignedList(testListTime, true))
	r := newLoaderRig(t, first, nil)
	r.srv.mu.Lock()
	r.srv.etags = true
	r.srv.mu.Unlock()
	// The initial check may have run before ETags were switched on; check twice more.
	r.clock.WaitScheduled(t, 1)
	_, err := r.loader.Refresh(context.Background())
	require.NoError(t, err)
	changed, err := r.loader.Refresh(context.Background())
	require.NoError(t, err)
	require.False(t, changed)

	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	require.GreaterOrEqual(t, r.srv.notModified, 1, "requests: %v", r.srv.ifNoneMatchs)
	last := r.srv.ifNoneMatchs[len(r.srv.ifNoneMatchs)-1]
	require.True(t, strings.HasPrefix(last, "/servicelist.sha2 \""), last)
	require.Equal(t, 1, r.srv.xmlHits)
}

func TestLoader_RejectedListLeavesHeldListInForce(t *testing.T) {
	trusted, rogue := testListPKIs(t)
	held := signList(t, trusted, unsignedList(testListTime, true))
	newer := unsignedList(testListTime.Add(time.Hour), false)

	tampered := signList(t, trusted, newer)
	tampered = bytes.Replace(tampered, []byte("https://fallback.example:9443"), []byte("https://attacker.example:9443"), 1)
	notXML := []byte("<ServiceList xmlns=\"urn:be:fgov:ehealth:bcp:protocol:v2\" IssueInstant=\"2027-01-01T00:00:00Z\"><Service")

	tests := []struct {
		name   string
		xml    []byte
		sha2   string // "" = the hash of xml
		status int
		reason string // RejectedError.Reason; "" = a FetchError
		is     []error
	}{
		{name: "bad signature (untrusted signer)", xml: signList(t, rogue, newer), reason: "signature", is: []error{ErrListSignature, soap.ErrUntrusted}},
		{name: "bad signature (content changed after signing)", xml: tampered, reason: "signature", is: []error{ErrListSignature, soap.ErrDigest}},
		{name: "unsigned", xml: []byte(newer), reason: "signature", is: []error{ErrListSignature, soap.ErrNoSignature}},
		{name: "older IssueInstant", xml: signList(t, trusted, unsignedList(testListTime.Add(-time.Hour), false)), reason: "stale", is: []error{ErrStaleList}},
		{name: "hash mismatch", xml: signList(t, trusted, newer), sha2: strings.Repeat("ab", 32), reason: "hash mismatch", is: []error{ErrHashMismatch}},
		{name: "malformed", xml: notXML, reason: "malformed", is: []error{ErrInvalidList, ErrListMalformed}},
		{name: "oversized", xml: bytes.Repeat([]byte(" "), MaxServiceListBytes+1)},
		{name: "bad .sha2", xml: signList(t, trusted, newer), sha2: "not a hash"},
		{name: "HTTP 500", xml: signList(t, trusted, newer), status: http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newLoaderRig(t, held, nil)
			r.clock.WaitScheduled(t, 1)
			require.Equal(t, held, r.loader.Current().Raw)
			heldList := r.loader.Current()

			r.srv.set(tc.xml, tc.sha2)
			r.srv.setStatus(tc.status)
			changed, err := r.loader.Refresh(context.Background())
			require.Error(t, err)
			require.False(t, changed)
			require.Same(t, heldList, r.loader.Current(), "held list replaced: %v", err)
			require.Equal(t, 1, r.changeCount(), "subscribers told of a refused list")
			stored, lerr := r.store.Load()
			require.NoError(t, lerr)
			require.Equal(t, held, stored, "a refused list is not persisted")
			require.Equal(t, err, r.loader.Status().LastErr)

			if tc.reason == "" {
				var fe *FetchError
				require.ErrorAs(t, err, &fe)
				require.Len(t, r.warnings("service list check failed; held list stays in force"), 1)
				return
			}
			var rej *RejectedError
			require.ErrorAs(t, err, &rej)
			require.ErrorIs(t, err, ErrListRejected)
			require.Equal(t, tc.reason, rej.Reason)
			for _, target := range tc.is {
				require.ErrorIs(t, err, target)
			}
			w := r.warnings("service list rejected; held list stays in force")
			require.Len(t, w, 1)
			require.Equal(t, tc.reason, w[0].ContextMap()["reason"])

			// Once the platform publishes a good, newer list, it is adopted.
			good := signList(t, trusted, unsignedList(testListTime.Add(2*time.Hour), false))
			r.srv.set(good, "")
			r.srv.setStatus(0)
			changed, err = r.loader.Refresh(context.Background())
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, good, r.loader.Current().Raw)
		})
	}
}

func TestLoader_RefusedListIsNotDownloadedAgain(t *testing.T) {
	trusted, rogue := testListPKIs(t)
	r := newLoaderRig(t, signList(t, trusted, unsignedList(testListTime, true)), nil)
	r.clock.WaitScheduled(t, 1)
	r.srv.set(signList(t, rogue, unsignedList(testListTime.Add(time.Hour), true)), "")

	_, err := r.loader.Refresh(context.Background())
	require.ErrorIs(t, err, ErrListSignature)
	_, err = r.loader.Refresh(context.Background())
	require.ErrorIs(t, err, ErrListSignature, "still reported")
	sha2, xml := r.srv.counts()
	require.Equal(t, [2]int{3, 2}, [2]int{sha2, xml}, "the refused .xml is fetched once")
	require.Len(t, r.warnings("service list rejected; held list stays in force"), 1, "warned once")
}

func TestLoader_RealSampleRejectedAsAltered(t *testing.T) {
	sample := readTestdata(t, sampleListPath)
	// Trust the sample's own issuing CA at its issue date, so that nothing but the
	// altered content can fail. It was re-indented after signing, SignedInfo included,
	// and the SignatureValue is checked before any digest: ErrSignature.
	l, err := ParseServiceList(sample)
	require.NoError(t, err)
	roots := sampleIssuingCA(t, sample)
	verify := soapListVerifier(roots, l.IssueInstant)
	require.ErrorIs(t, verify(sample), soap.ErrSignature)

	srv := newListServer(t, sample)
	clock := newStepClock(testLoaderNow)
	loader, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: verify},
		WithHTTPClient(srv.srv.Client()), WithClock(clock))
	require.NoError(t, err)
	defer loader.Close()
	clock.WaitScheduled(t, 1)
	require.Nil(t, loader.Current())
	err = loader.Status().LastErr
	var rej *RejectedError
	require.ErrorAs(t, err, &rej)
	require.Equal(t, "signature", rej.Reason)
	require.ErrorIs(t, err, soap.ErrSignature)
	require.Equal(t, l.SHA256, rej.SHA256)
}

// sampleIssuingCA returns a pool holding the second certificate of the sample's KeyInfo
// (the issuing CA of the signer).
func sampleIssuingCA(t *testing.T, sample []byte) *x509.CertPool {
	t.Helper()
	doc, err := soap.ParseDocument(bytes.NewReader(sample), soap.Limits{})
	require.NoError(t, err)
	certs := doc.FindElements("//X509Certificate")
	require.Len(t, certs, 2)
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(certs[1].Text()), ""))
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.Contains(t, ca.Subject.CommonName, "issuing CA 001")
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func TestLoader_StartsFromStoreThenBuiltinWhenNetworkIsDown(t *testing.T) {
	trusted, rogue := testListPKIs(t)
	down := httptest.NewTLSServer(http.NotFoundHandler())
	downURL := down.URL + "/servicelist"
	down.Close() // connection refused from now on

	storedRaw := signList(t, trusted, unsignedList(testListTime, false))
	builtinRaw := signList(t, trusted, unsignedList(testListTime.Add(-24*time.Hour), true))
	newerBuiltin := []byte(unsignedList(testListTime.Add(24*time.Hour), true)) // builtin: not verified

	tests := []struct {
		name    string
		stored  []byte
		builtin []byte
		want    []byte
		source  ListSource
		warn    string
	}{
		{name: "persisted list", stored: storedRaw, builtin: builtinRaw, want: storedRaw, source: ListFromStore},
		{name: "builtin when nothing is stored", builtin: builtinRaw, want: builtinRaw, source: ListFromBuiltin},
		{name: "builtin when the stored list is forged", stored: signList(t, rogue, unsignedList(testListTime, false)), builtin: builtinRaw, want: builtinRaw, source: ListFromBuiltin, warn: "stored service list rejected; ignored"},
		{name: "builtin when the stored list is corrupt", stored: storedRaw[:len(storedRaw)/2], builtin: builtinRaw, want: builtinRaw, source: ListFromBuiltin, warn: "stored service list rejected; ignored"},
		{name: "builtin newer than the stored list", stored: storedRaw, builtin: newerBuiltin, want: newerBuiltin, source: ListFromBuiltin},
		{name: "nothing at all", source: ListFromNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewFileListStore(filepath.Join(t.TempDir(), "servicelist.xml"))
			if tc.stored != nil {
				require.NoError(t, os.WriteFile(store.Path(), tc.stored, 0o600))
			}
			core, logs := observer.New(zapcore.DebugLevel)
			clock := newStepClock(testLoaderNow)
			l, err := NewLoader(LoaderConfig{
				BaseURL: downURL,
				Verify:  soapListVerifier(trusted.roots, testListTime),
				Store:   store,
				Builtin: tc.builtin,
			}, WithClock(clock), WithLogger(zap.New(core)))
			require.NoError(t, err)
			defer l.Close()
			clock.WaitScheduled(t, 1)

			require.Equal(t, tc.source, l.Source())
			if tc.want == nil {
				require.Nil(t, l.Current())
			} else {
				require.Equal(t, tc.want, l.Current().Raw)
			}
			var fe *FetchError
			require.ErrorAs(t, l.Status().LastErr, &fe, "the network is down")
			require.Equal(t, downURL+".sha2", fe.URL)
			if tc.warn != "" {
				require.Len(t, logs.FilterMessage(tc.warn).All(), 1)
			}
			var got []*ServiceList
			l.OnChange(func(sl *ServiceList) { got = append(got, sl) })
			if tc.want != nil {
				require.Len(t, got, 1, "a subscriber gets the held list at once")
			} else {
				require.Empty(t, got)
			}
		})
	}
}

func TestLoader_RecoversWhenTheServerComesBack(t *testing.T) {
	trusted, _ := testListPKIs(t)
	builtin := signList(t, trusted, unsignedList(testListTime.Add(-time.Hour), true))
	served := signList(t, trusted, unsignedList(testListTime, false))
	srv := newListServer(t, served)
	srv.setStatus(http.StatusServiceUnavailable)
	clock := newStepClock(testLoaderNow)
	core, logs := observer.New(zapcore.DebugLevel)
	l, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: soapListVerifier(trusted.roots, testListTime), Builtin: builtin},
		WithHTTPClient(srv.srv.Client()), WithClock(clock), WithLogger(zap.New(core)))
	require.NoError(t, err)
	defer l.Close()
	clock.WaitScheduled(t, 1)
	var fe *FetchError
	require.ErrorAs(t, l.Status().LastErr, &fe)
	require.Equal(t, http.StatusServiceUnavailable, fe.StatusCode)
	require.Equal(t, ListFromBuiltin, l.Source())

	// Still down: the same failure is not warned about again.
	clock.Advance(DefaultListInterval)
	clock.WaitScheduled(t, 2)
	require.Error(t, l.Status().LastErr)
	require.Len(t, logs.FilterLevelExact(zapcore.WarnLevel).All(), 1)

	srv.setStatus(0)
	clock.Advance(DefaultListInterval)
	clock.WaitScheduled(t, 3)
	require.NoError(t, l.Status().LastErr)
	require.Equal(t, ListFromNetwork, l.Source())
	require.Equal(t, served, l.Current().Raw)
	require.Len(t, logs.FilterMessage("service list reachable again").All(), 1)
	require.Len(t, logs.FilterLevelExact(zapcore.WarnLevel).All(), 1)
}

func TestLoader_BuiltinMustParse(t *testing.T) {
	trusted, _ := testListPKIs(t)
	_, err := NewLoader(LoaderConfig{BaseURL: "https://127.0.0.1:1/servicelist", Verify: soapListVerifier(trusted.roots, testListTime),
		Builtin: []byte("<nope/>")})
	require.ErrorIs(t, err, ErrInvalidList)
	require.Contains(t, err.Error(), "LoaderConfig.Builtin")

	// The real sample is a valid builtin: trusted as compiled in, so its signature is not checked.
	l, err := NewLoader(LoaderConfig{BaseURL: "https://127.0.0.1:1/servicelist", Verify: soapListVerifier(trusted.roots, testListTime),
		Builtin: readTestdata(t, sampleListPath)}, WithClock(newStepClock(testLoaderNow)))
	require.NoError(t, err)
	defer l.Close()
	s, ok := l.Current().Lookup("insurability:v2")
	require.True(t, ok)
	require.Equal(t, "https://pilot.mycarenet.be:9443/ehealth/bcp/insurability", s.Endpoints[1].URL)
}

func TestLoaderConfig_Validate(t *testing.T) {
	verify := func([]byte) error { return nil }
	tests := []struct {
		cfg   LoaderConfig
		field string
	}{
		{LoaderConfig{Verify: verify}, "BaseURL"},
		{LoaderConfig{BaseURL: "http://servicelist.example/servicelist", Verify: verify}, "BaseURL"},
		{LoaderConfig{BaseURL: "servicelist", Verify: verify}, "BaseURL"},
		{LoaderConfig{BaseURL: "https://servicelist.example/servicelist"}, "Verify"},
		{LoaderConfig{BaseURL: "https://servicelist.example/servicelist", Verify: verify, Interval: -1}, "Interval"},
		{LoaderConfig{BaseURL: "https://servicelist.example/servicelist", Verify: verify, Timeout: -1}, "Timeout"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		require.Error(t, err)
		require.Contains(t, err.Error(), "LoaderConfig."+tc.field)
		_, err = NewLoader(tc.cfg)
		require.Error(t, err)
	}
	cfg := DefaultLoaderConfig("https://servicelist.ehealth.fgov.be/servicelist")
	cfg.Verify = verify
	require.NoError(t, cfg.Validate())
	require.Equal(t, 60*time.Second, cfg.Interval)
}

func TestLoader_VerifierPanicIsARejection(t *testing.T) {
	trusted, _ := testListPKIs(t)
	srv := newListServer(t, signList(t, trusted, unsignedList(testListTime, true)))
	clock := newStepClock(testLoaderNow)
	l, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: func([]byte) error { panic("boom") }},
		WithHTTPClient(srv.srv.Client()), WithClock(clock))
	require.NoError(t, err)
	defer l.Close()
	clock.WaitScheduled(t, 1)
	require.ErrorIs(t, l.Status().LastErr, ErrListSignature)
	require.Nil(t, l.Current())
}

func TestLoader_CloseStopsAndWaits(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	trusted, _ := testListPKIs(t)
	srv := newListServer(t, signList(t, trusted, unsignedList(testListTime, true)))
	clock := newStepClock(testLoaderNow)
	client := srv.srv.Client()
	l, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: soapListVerifier(trusted.roots, testListTime)},
		WithHTTPClient(client), WithClock(clock))
	require.NoError(t, err)
	clock.WaitScheduled(t, 1)
	require.Equal(t, 1, clock.Pending())
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	require.Equal(t, 0, clock.Pending(), "the pending check is cancelled")
	clock.Advance(time.Hour)
	sha2, _ := srv.counts()
	require.Equal(t, 1, sha2)
	client.CloseIdleConnections()
	srv.srv.Close()
}

func TestLoader_RefreshHonoursContext(t *testing.T) {
	trusted, _ := testListPKIs(t)
	srv := newListServer(t, signList(t, trusted, unsignedList(testListTime, true)))
	clock := newStepClock(testLoaderNow)
	l, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: soapListVerifier(trusted.roots, testListTime)},
		WithHTTPClient(srv.srv.Client()), WithClock(clock))
	require.NoError(t, err)
	defer l.Close()
	clock.WaitScheduled(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Refresh(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.True(t, errors.Is(err, context.Canceled))
	require.NotNil(t, l.Current(), "a failed check changes nothing")
}

// brokenStore fails every Load and Save.
type brokenStore struct{ saves int }

func (s *brokenStore) Load() ([]byte, error) { return nil, errors.New("disk on fire") }
func (s *brokenStore) Save([]byte) error {
	s.saves++
	return errors.New("disk full")
}

func TestLoader_StoreFailuresDoNotStopTheLoader(t *testing.T) {
	trusted, _ := testListPKIs(t)
	served := signList(t, trusted, unsignedList(testListTime, true))
	srv := newListServer(t, served)
	store := &brokenStore{}
	core, logs := observer.New(zapcore.DebugLevel)
	clock := newStepClock(testLoaderNow)
	l, err := NewLoader(LoaderConfig{BaseURL: srv.baseURL(), Verify: soapListVerifier(trusted.roots, testListTime), Store: store},
		WithHTTPClient(srv.srv.Client()), WithClock(clock), WithLogger(zap.New(core)))
	require.NoError(t, err)
	defer l.Close()
	clock.WaitScheduled(t, 1)
	require.Len(t, logs.FilterMessage("stored service list unreadable; ignored").All(), 1)
	require.Equal(t, served, l.Current().Raw, "adopted although it could not be persisted")
	require.Equal(t, 1, store.saves)
	require.Len(t, logs.FilterMessage("service list adopted but not persisted").All(), 1)
}
