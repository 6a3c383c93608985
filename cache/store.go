package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
)

var (
	bucketMeta        = []byte("meta")
	bucketOutbox      = []byte("outbox")
	bucketOutboxIndex = []byte("outbox-index")
	bucketDead        = []byte("dead")
	answerPrefix      = "a:"
)

// function is a registered priority function.
type function struct {
	name   string
	policy Policy
	bucket []byte
	bkt    string // bucket as a string, for the RecordBackend
}

// Store is the encrypted local store of one tenant: answers of priority
// functions (Put, Get) and the outbox of queued writes (Outbox). It keeps
// decrypted answers in a memory LRU in front of a bbolt file whose records are
// all encrypted. A Store is safe for concurrent use; only one Store (one
// process) may have a file open at a time. Close stops its background work.
type Store struct {
	cfg   Config
	path  string
	db    *bolt.DB
	keys  *keyring
	index *indexer
	funcs map[string]*function
	now   func() time.Time
	log   *zap.Logger

	updateMu sync.Mutex // one Update at a time in this process (others, in other processes, meet in the storage)

	mem      *lru.Cache[memKey, *memEntry]
	memMu    sync.Mutex    // held by every change of mem but evictions by count; orders memory updates against disk reads filling the LRU
	gen      atomic.Uint64 // bumped under memMu by every write that changes answers
	memBytes atomic.Int64  // bytes of the values in mem

	writes chan *writeOp
	done   chan struct{}
	closed atomic.Bool
	wg     sync.WaitGroup
	once   sync.Once

	authFailures atomic.Uint64
	recovered    *FileError

	// damaged is set by the first memory fault on the mapped file (see
	// Store.faulted); wedged when that fault left bbolt's locks held.
	damaged atomic.Pointer[error]
	wedged  atomic.Bool

	outbox *Outbox

	warmMu  sync.Mutex
	warmers map[*Warmer]struct{}

	// rb keeps the records (answers, meta, dead letters): the file (fb) or
	// Config.Backend (be). With a Backend, owner names this Store in outbox
	// leases. shared is the tenant's index key once loaded (at Open for
	// the file, on the first call that reaches a Backend).
	rb       RecordBackend
	fb       *fileBackend
	be       Backend
	q        queue // the outbox's queue: fb, or be's
	owner    string
	shared   atomic.Pointer[indexer]
	sharedMu sync.Mutex

	// Deferred answers (deferred.go): deferq feeds the file's committer (and
	// signals the Backend's flusher); with a Backend, pend holds the answers
	// waiting for their write, and flushMu orders a flush (write-held)
	// against durable Puts and Deletes (read-held).
	deferq        deferQueue
	deferFailures atomic.Uint64
	deferInFlight atomic.Int64 // file: deferred writes handed off and not yet committed
	commits       atomic.Uint64
	pendMu        sync.Mutex
	pend          map[memKey]*pendingAnswer
	pendClosed    bool
	pendArmed     bool // as deferQueue.armed, for pend (under pendMu)
	flushMu       sync.RWMutex
}

type memKey struct{ fn, key string }

type memEntry struct {
	value      []byte
	storedAt   int64 // Unix nanoseconds, as on disk
	notAfter   int64 // 0 = none
	stored     time.Time
	notAfterT  time.Time
	until      time.Time // end of serving: StoredAt + ServeStale, or NotAfter if earlier
	byNotAfter bool
}

// Entry is an answer read from the Store.
type Entry struct {
	Function string
	Key      string
	// Value is the stored answer. It is shared with the memory cache (so a
	// hit costs no copy): read it, never modify it (bytes.Clone it first).
	Value []byte
	// StoredAt is when the answer was stored (normally when it came from the platform).
	StoredAt time.Time
	// NotAfter is the record's own end of validity (zero if none).
	NotAfter time.Time
	// Age is how old the answer is now.
	Age time.Duration
	// Fresh reports whether Age is below the function's Policy.Fresh.
	Fresh bool
	// Until is the last moment the answer may be served: StoredAt +
	// Policy.ServeStale, or NotAfter if earlier.
	Until time.Time
}

// Open opens (creating if needed) the store file of cfg.Tenant under cfg.Dir,
// checks it (see Config.OnCorrupt for what happens to an unusable file),
// purges expired answers and starts the background purge.
func Open(cfg Config, opts ...Option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{now: time.Now, log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	kr, err := newKeyring(cfg.Keys)
	if err != nil {
		return nil, err
	}
	funcs := map[string]*function{}
	policies := DefaultPolicies()
	for name, p := range cfg.Functions {
		policies[name] = p
	}
	for name, p := range policies {
		funcs[name] = &function{name: name, policy: p.normalized(), bucket: []byte(answerPrefix + name), bkt: answerPrefix + name}
	}
	if cfg.Backend != nil {
		s := &Store{cfg: cfg, keys: kr, funcs: funcs, now: o.now, log: o.log, done: make(chan struct{}), warmers: map[*Warmer]struct{}{},
			deferq: newDeferQueue(), pend: map[memKey]*pendingAnswer{}}
		s.mem, _ = lru.New[memKey, *memEntry](1)
		if err := s.openShared(); err != nil {
			return nil, err
		}
		s.wg.Add(1)
		go s.deferLoop()
		if cfg.PurgeInterval > 0 {
			s.wg.Add(1)
			go s.purgeLoop(cfg.PurgeInterval)
		}
		return s, nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: creating store directory: %w", err)
	}
	path := filepath.Join(cfg.Dir, cfg.Tenant+".db")
	if err := checkAccess(cfg, path, o.log); err != nil {
		return nil, err
	}
	s := &Store{
		cfg: cfg, path: path, keys: kr, funcs: funcs, now: o.now, log: o.log,
		writes: make(chan *writeOp), done: make(chan struct{}), warmers: map[*Warmer]struct{}{},
		deferq: newDeferQueue(),
	}
	db, ix, err := openFile(path, cfg, kr, s.now)
	if err != nil {
		var fe *FileError
		if !errors.As(err, &fe) || cfg.OnCorrupt == CorruptFail {
			return nil, err
		}
		moved, mvErr := moveAside(path, s.now())
		if mvErr != nil {
			return nil, fmt.Errorf("%w (moving it aside failed: %v)", err, mvErr)
		}
		fe.MovedTo = moved
		s.log.Warn("cache: unusable store file moved aside", zap.String("path", path), zap.String("moved_to", moved), zap.Error(fe.Err))
		if cfg.OnCorrupt != CorruptStartFresh {
			return nil, fe
		}
		s.recovered = fe
		if db, ix, err = openFile(path, cfg, kr, s.now); err != nil {
			return nil, err
		}
	}
	s.db, s.index = db, ix
	s.fb = &fileBackend{s: s, fq: newFileQueue()}
	s.rb, s.q = s.fb, s.fb
	s.shared.Store(ix)
	s.mem, _ = lru.NewWithEvict(cfg.MemoryEntries, func(_ memKey, me *memEntry) { s.memBytes.Add(-int64(len(me.value))) })
	s.outbox = newOutbox(s)
	if err := s.fb.loadQueue(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.commitLoop()
	if _, err := s.Purge(context.Background()); err != nil {
		_ = s.Close()
		return nil, err
	}
	if cfg.PurgeInterval > 0 {
		s.wg.Add(1)
		go s.purgeLoop(cfg.PurgeInterval)
	}
	return s, nil
}

// Path returns the store file's path ("backend:<tenant>" with a Config.Backend).
func (s *Store) Path() string { return s.path }

// Recovered returns what Open found wrong with the previous store file when
// Config.OnCorrupt is CorruptStartFresh and it started with a fresh one; nil otherwise.
func (s *Store) Recovered() *FileError { return s.recovered }

// Policy returns the policy of function (with its defaults applied), and
// whether the function is registered.
func (s *Store) Policy(function string) (Policy, bool) {
	f := s.funcs[function]
	if f == nil {
		return Policy{}, false
	}
	return f.policy, true
}

// Outbox returns the outbox of queued writes kept in the same file.
func (s *Store) Outbox() *Outbox { return s.outbox }

// Close stops background work (purge, warmers, pending commits finish first,
// deferred answers are committed) and closes the file. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.warmMu.Lock()
		s.closed.Store(true) // under warmMu: no Warmer can register after this
		ws := make([]*Warmer, 0, len(s.warmers))
		for w := range s.warmers {
			ws = append(ws, w)
		}
		s.warmMu.Unlock()
		for _, w := range ws {
			w.Close()
		}
		close(s.done)
		s.wg.Wait()
		if s.be != nil {
			return // the backend belongs to the caller
		}
		if s.wedged.Load() {
			// bbolt faulted while starting a transaction, with its locks
			// held: closing it would wait for them forever. The file stays
			// open (and locked) until the process exits.
			err = *s.damaged.Load()
			return
		}
		err = s.db.Close()
	})
	return err
}

// PutOption sets an optional attribute of a stored answer.
type PutOption func(*putOptions)

type putOptions struct {
	notAfter time.Time
	storedAt time.Time
	deferred bool
}

// NotAfter ends the answer's validity at t whatever its policy says (for
// example the notAfter of an ETK's certificate, or a token's NotOnOrAfter).
func NotAfter(t time.Time) PutOption { return func(o *putOptions) { o.notAfter = t } }

// StoredAt records the answer as obtained at t instead of now (for answers
// fetched earlier, and for Import).
func StoredAt(t time.Time) PutOption { return func(o *putOptions) { o.storedAt = t } }

func (s *Store) function(name string) (*function, error) {
	f := s.funcs[name]
	if f == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownFunction, name)
	}
	return f, nil
}

// writable returns the function a write of key goes to, or why key cannot be written.
func (s *Store) writable(function, key string) (*function, error) {
	f, err := s.function(function)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: key of %d bytes (limit %d)", ErrTooLarge, len(key), MaxKeyBytes)
	}
	return f, nil
}

// Put stores value as the answer of function for key, durably (the call
// returns after the file is synced; with the Deferred option, as soon as
// the writer has it), encrypted under the current key. It
// replaces any earlier answer. value is copied. An answer whose NotAfter has
// already passed is not stored (*ExpiredError).
// If ctx ends before the write is synced, Put returns ctx.Err() at once and
// the answer may or may not be stored (repeating the Put is safe).
func (s *Store) Put(ctx context.Context, function, key string, value []byte, opts ...PutOption) error {
	f, err := s.writable(function, key)
	if err != nil {
		return err
	}
	if len(value) > s.cfg.MaxValueBytes {
		return fmt.Errorf("%w: %s value of %d bytes (limit %d)", ErrTooLarge, function, len(value), s.cfg.MaxValueBytes)
	}
	var po putOptions
	for _, o := range opts {
		o(&po)
	}
	now := s.now()
	if po.storedAt.IsZero() {
		po.storedAt = now
	}
	var notAfter int64
	if !po.notAfter.IsZero() {
		if !now.Before(po.notAfter) {
			return &ExpiredError{Function: function, StoredAt: po.storedAt, Age: now.Sub(po.storedAt), Until: po.notAfter, NotAfter: true}
		}
		notAfter = po.notAfter.UnixNano()
	}
	storedAt := po.storedAt.UnixNano()
	if s.closed.Load() {
		return ErrClosed
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	dk := ix.sum(f.name, key)
	rec := s.keys.seal(kindAnswer, storedAt, notAfter, f.bucket, dk, encodeAnswer(key, value))
	r := Record{Key: dk, Value: rec, T1: storedAt, T2: notAfter}
	if s.fb == nil && !po.deferred {
		return s.putSharedNow(ctx, f, key, r)
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	me := newMemEntry(f, v, storedAt, notAfter)
	switch {
	case s.fb == nil:
		return s.putDeferredShared(ctx, f, key, r, me)
	case po.deferred:
		return s.putDeferredFile(ctx, f, key, me, dk, rec)
	}
	// The memory LRU (the file's, exclusive to this process) follows the
	// file in commit order.
	mk := memKey{f.name, key}
	return s.fb.putAfter(ctx, f.bkt, r, func() {
		s.memMu.Lock()
		s.gen.Add(1)
		s.memAdd(mk, me)
		s.memMu.Unlock()
	})
}

// Delete removes the answer of function for key, if any.
func (s *Store) Delete(ctx context.Context, function, key string) error {
	f, err := s.function(function)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return err
	}
	dk := ix.sum(f.name, key)
	mk := memKey{f.name, key}
	if s.fb != nil {
		_, err := s.fb.deleteAfter(ctx, f.bkt, dk, func() {
			s.memMu.Lock()
			s.gen.Add(1)
			s.mem.Remove(mk)
			s.memMu.Unlock()
		})
		return err
	}
	s.flushMu.RLock()
	defer s.flushMu.RUnlock()
	s.dropPending(mk)
	_, err = s.be.Delete(ctx, s.cfg.Tenant, f.bkt, dk)
	return err
}

// Get returns the answer of function for key if it may still be served:
// ErrNotFound if there is none (or the stored record failed authentication:
// then the error also wraps ErrTampered), an *ExpiredError (ErrExpired) if it
// is older than the function's ServeStale or past its NotAfter. A memory hit
// neither reads the file nor decrypts.
func (s *Store) Get(ctx context.Context, function, key string) (Entry, error) {
	f := s.funcs[function]
	if f == nil {
		return Entry{}, fmt.Errorf("%w %q", ErrUnknownFunction, function)
	}
	if s.closed.Load() {
		return Entry{}, ErrClosed
	}
	now := s.now()
	mk := memKey{function, key}
	if s.fb != nil {
		if me, ok := s.mem.Get(mk); ok {
			return makeEntry(f, key, me, now)
		}
	} else if me := s.pendingShared(mk); me != nil {
		return makeEntry(f, key, me, now)
	}
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	g := s.gen.Load()
	ix, err := s.sharedIndex(ctx)
	if err != nil {
		return Entry{}, err
	}
	dk := ix.sum(f.name, key)
	raw, err := s.rb.Get(ctx, s.cfg.Tenant, f.bkt, dk)
	if err != nil {
		return Entry{}, err
	}
	if raw == nil {
		return Entry{}, ErrNotFound
	}
	me, _, err := s.openAnswer(f, dk, raw, key)
	if err != nil {
		return Entry{}, err
	}
	if me.storedAt == seedStoredAt {
		return Entry{}, ErrNotFound // the empty record of an Update that wrote nothing yet
	}
	if s.fb != nil {
		s.memMu.Lock()
		if s.gen.Load() == g {
			s.memAdd(mk, me)
		}
		s.memMu.Unlock()
	}
	return makeEntry(f, key, me, now)
}

// memAdd puts an answer in the memory cache and keeps the cache within
// Config.MemoryBytes. Called with memMu held.
func (s *Store) memAdd(k memKey, me *memEntry) {
	if old, ok := s.mem.Peek(k); ok {
		s.memBytes.Add(-int64(len(old.value))) // Add replaces without calling the eviction callback
	}
	s.mem.Add(k, me)
	s.memBytes.Add(int64(len(me.value)))
	for s.memBytes.Load() > s.cfg.MemoryBytes {
		if _, _, ok := s.mem.RemoveOldest(); !ok {
			break
		}
	}
}

// openAnswer authenticates and decodes a raw answer record; failures are
// counted, logged without personal data and reported as ErrNotFound+ErrTampered.
func (s *Store) openAnswer(f *function, dk, raw []byte, wantKey string) (*memEntry, string, error) {
	if len(raw) > s.cfg.MaxValueBytes+MaxKeyBytes+recordOverhead {
		return nil, "", s.tampered(f.name, fmt.Errorf("%w: record of %d bytes exceeds the limit", ErrTampered, len(raw)))
	}
	h, pt, err := s.keys.open(raw, f.bucket, dk, kindAnswer)
	if err != nil {
		return nil, "", s.tampered(f.name, err)
	}
	k, v, err := decodeAnswer(pt, s.cfg.MaxValueBytes)
	if err != nil {
		return nil, "", s.tampered(f.name, fmt.Errorf("%w: %w", ErrTampered, err))
	}
	if wantKey != "" && k != wantKey {
		return nil, "", s.tampered(f.name, fmt.Errorf("%w: record holds another key", ErrTampered))
	}
	if v == nil {
		v = []byte{}
	}
	return newMemEntry(f, v, h.t1, h.t2), k, nil
}

func (s *Store) tampered(fn string, err error) error {
	s.authFailures.Add(1)
	s.log.Warn("cache: record skipped", zap.String("function", fn), zap.Error(err))
	return fmt.Errorf("%w: %w", ErrNotFound, err)
}

func makeEntry(f *function, key string, me *memEntry, now time.Time) (Entry, error) {
	age := now.Sub(me.stored)
	if !now.Before(me.until) {
		return Entry{}, &ExpiredError{Function: f.name, StoredAt: me.stored, Age: age, Until: me.until, NotAfter: me.byNotAfter}
	}
	return Entry{
		Function: f.name, Key: key, Value: me.value, StoredAt: me.stored, NotAfter: me.notAfterT,
		Age: age, Fresh: age < f.policy.Fresh, Until: me.until,
	}, nil
}

// newMemEntry precomputes the times a memory hit needs, so a hit only
// compares them with now.
func newMemEntry(f *function, value []byte, storedAt, notAfter int64) *memEntry {
	me := &memEntry{value: value, storedAt: storedAt, notAfter: notAfter, stored: time.Unix(0, storedAt)}
	me.until = me.stored.Add(f.policy.ServeStale)
	if notAfter != 0 {
		me.notAfterT = time.Unix(0, notAfter)
		if me.notAfterT.Before(me.until) {
			me.until, me.byNotAfter = me.notAfterT, true
		}
	}
	return me
}

// view runs fn in a read transaction, turning a panic of bbolt on a damaged
// page into ErrCorrupt, and a memory fault on the mapped file (the file was
// truncated or became unreadable while open) into a *FileError wrapping
// ErrDamaged and ErrCorrupt instead of a crash. Faults are turned into panics
// on the calling goroutine only for the time of the transaction.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.damaged.Load(); err != nil {
		return *err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var tx *bolt.Tx
	defer func() {
		if r := recover(); r != nil {
			if tx != nil {
				_ = tx.Rollback() // releases bbolt's locks without reading the file
			}
			err = s.faulted(r, tx == nil)
		}
	}()
	tx, err = s.db.Begin(false)
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return err
	}
	err = fn(tx)
	if rerr := tx.Rollback(); err == nil && rerr != nil {
		err = rerr
	}
	return err
}

// faulted turns what a bbolt transaction panicked with into an error. A
// memory fault on the mapped file means the file was damaged under the open
// Store: the Store stops using it (every later read and write returns the same
// error; memory hits are still served). inBegin reports that the fault came
// while bbolt was starting a transaction, with its internal locks held: then
// Close must not wait for them.
func (s *Store) faulted(r any, inBegin bool) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		err := error(&FileError{Path: s.path, Err: fmt.Errorf("%w (%w): memory fault reading the mapped file: %v", ErrDamaged, ErrCorrupt, f)})
		if s.damaged.CompareAndSwap(nil, &err) {
			s.log.Error("cache: store file damaged while open; the store stops using it", zap.String("path", s.path))
		}
		if inBegin {
			s.wedged.Store(true)
		}
		return *s.damaged.Load()
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, r)
}

// writeOp is one write handed to the group committer.
type writeOp struct {
	fn    func(tx *bolt.Tx) error
	after func() // run by the committer after a successful commit, in commit order
	err   error
	done  chan struct{} // nil for a deferred write: nobody waits

	deferred bool   // handed off by a Deferred Put: a failure is counted and logged
	fname    string // the function of a deferred answer, for that log
}

const maxBatch = 512

// write hands fn to the committer and waits until it is committed and synced.
// Writes arriving while a commit is in progress go together in the next one.
//
// When ctx ends first, write returns ctx.Err() at once. If fn had already
// been handed to the committer it is not withdrawn: it may still be
// committed (and after run) later, so the outcome is then unknown to the
// caller. Every write of the Store is safe to repeat (Put replaces, Delete
// deletes, Enqueue adds nothing for an idempotency key already pending), so
// the caller may simply retry.
func (s *Store) write(ctx context.Context, fn func(tx *bolt.Tx) error, after func()) error {
	if s.closed.Load() {
		return ErrClosed
	}
	op := &writeOp{fn: fn, after: after, done: make(chan struct{})}
	select {
	case s.writes <- op:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err() // the committer still owns op: it may yet be committed
	}
}

// commitLoop is the group committer. Durable writes are committed as soon as
// the previous commit ends, with whatever else arrived meanwhile; deferred
// writes wait up to Config.DeferredFlush for company, or ride along with the
// next durable commit. Deferred writes waiting go first in a batch: they were
// handed off before the durable writes the committer has just taken, or at
// the same time (concurrent calls have no order).
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*writeOp, 0, maxBatch)
	t := time.NewTimer(time.Hour)
	t.Stop()
	var linger <-chan time.Time
	for {
		select {
		case op := <-s.writes:
			batch = s.takeDeferred(batch[:0], false)
			batch = append(batch, op)
		drain:
			for len(batch) < maxBatch {
				select {
				case op := <-s.writes:
					batch = append(batch, op)
				default:
					break drain
				}
			}
			s.commit(batch)
		case <-s.deferq.sig:
			if linger == nil {
				t.Reset(s.cfg.DeferredFlush)
				linger = t.C
			}
		case <-linger:
			linger = nil
			if batch = s.takeDeferred(batch[:0], false); len(batch) > 0 {
				s.commit(batch)
			}
		case <-s.done:
			t.Stop()
			if batch = s.takeDeferred(batch[:0], true); len(batch) > 0 {
				s.commit(batch)
			}
			return
		}
	}
}

func (s *Store) commit(batch []*writeOp) {
	err := s.update(func(tx *bolt.Tx) error {
		for _, op := range batch {
			if err := op.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// One write failed: commit the others one by one so it fails alone.
		for _, op := range batch {
			op.err = s.update(op.fn)
			s.finish(op)
		}
		return
	}
	for _, op := range batch {
		op.err = err
		s.finish(op)
	}
}

func (s *Store) finish(op *writeOp) {
	if op.err == nil && op.after != nil {
		op.after()
	}
	if op.deferred {
		s.deferInFlight.Add(-1)
		if op.err != nil {
			s.deferredFailed(1, op.fname, op.err)
		}
		return
	}
	close(op.done)
}

// update runs fn in a write transaction and commits it, with the same
// recovery as view. It runs on the committer's goroutine (and in Open).
func (s *Store) update(fn func(tx *bolt.Tx) error) (err error) {
	if err := s.damaged.Load(); err != nil {
		return *err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var tx *bolt.Tx
	defer func() {
		if r := recover(); r != nil {
			if tx != nil {
				// Not bbolt's own rollback, which rereads the freelist page
				// from the (damaged) file and could fault again with the
				// writer lock held.
				_ = tx.Rollback()
			}
			err = s.faulted(r, tx == nil)
		}
	}()
	tx, err = s.db.Begin(true)
	if err != nil {
		if errors.Is(err, bolt.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return err
	}
	if err = fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err = tx.Commit(); err == nil {
		s.commits.Add(1)
	}
	return err
}

// Purge deletes the answers older than their function's Retention or past
// their NotAfter, and returns how many it deleted. A record is authenticated
// before it is deleted: one that fails (its times altered on disk, say) is
// kept as evidence and counted in Stats.AuthFailures, like a read would. It runs at Open and every
// Config.PurgeInterval; call it to purge now. Answers of functions that are
// no longer configured are kept (and counted by Stats).
func (s *Store) Purge(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	// The stored clear-text times only nominate: each candidate is
	// authenticated and decided on its sealed times; one that fails (its
	// times altered on disk, say) is kept as evidence and counted, and a
	// record replaced since it was read is not deleted (DeleteRecord).
	now := s.now().UnixNano()
	total := 0
	for _, f := range s.funcs {
		retention := int64(f.policy.Retention)
		var after []byte
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			recs, err := s.rb.Expired(ctx, s.cfg.Tenant, f.bkt, now-retention, now, after, sharedScanMax)
			if err != nil {
				return total, err
			}
			var doomed []Record
			for _, r := range recs {
				h, _, err := s.keys.open(r.Value, f.bucket, r.Key, kindAnswer)
				if err != nil {
					_ = s.tampered(f.name, err) // kept as evidence
					continue
				}
				if now-h.t1 >= retention || (h.t2 != 0 && now >= h.t2) {
					doomed = append(doomed, r)
				}
			}
			n, err := s.deleteRecords(ctx, f.bkt, doomed)
			total += n
			if err != nil {
				return total, err
			}
			if len(recs) < sharedScanMax {
				break
			}
			after = recs[len(recs)-1].Key
		}
	}
	if total > 0 {
		if s.fb != nil {
			// Memory entries are keyed by logical key, unknown here: drop
			// them all rather than serve what the disk no longer holds.
			s.memMu.Lock()
			s.gen.Add(1)
			s.mem.Purge()
			s.memMu.Unlock()
		}
		s.log.Info("cache: purged expired answers", zap.Int("count", total))
	}
	return total, nil
}

// deleteRecords deletes each record still holding its value, in one
// transaction when the storage can (the file), and returns how many it deleted.
func (s *Store) deleteRecords(ctx context.Context, bucket string, recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if rb, ok := s.rb.(recordBatcher); ok {
		return rb.deleteRecordBatch(ctx, bucket, recs)
	}
	n := 0
	for _, r := range recs {
		ok, err := s.rb.DeleteRecord(ctx, s.cfg.Tenant, bucket, r.Key, r.Value)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// putNewer stores each record unless the one it replaces was stored later
// (Import), in one transaction when the storage can; wrote[i] reports record
// i (false for every record not reached when err is not nil).
func (s *Store) putNewer(ctx context.Context, recs []BucketRecord) ([]bool, error) {
	if rb, ok := s.rb.(recordBatcher); ok {
		wrote, err := rb.putNewerBatch(ctx, recs)
		if err != nil {
			return make([]bool, len(recs)), err
		}
		return wrote, nil
	}
	wrote := make([]bool, len(recs))
	for i, r := range recs {
		ok, err := s.rb.PutNewer(ctx, s.cfg.Tenant, r.Bucket, r.Record)
		if err != nil {
			return wrote, err
		}
		wrote[i] = ok
	}
	return wrote, nil
}

// swapRecords replaces each record still holding olds[i] by recs[i], in one
// transaction when the storage can, and returns how many it replaced.
func (s *Store) swapRecords(ctx context.Context, bucket string, olds [][]byte, recs []Record) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	if rb, ok := s.rb.(recordBatcher); ok {
		return rb.swapBatch(ctx, bucket, olds, recs)
	}
	n := 0
	for i, r := range recs {
		ok, err := s.rb.Swap(ctx, s.cfg.Tenant, bucket, olds[i], r)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (s *Store) purgeLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if _, err := s.Purge(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("cache: purge failed", zap.Error(err))
			}
		case <-s.done:
			return
		}
	}
}

// Rekey rewrites every record not encrypted under the current key
// (Config.Keys[0]) under it, and then forgets the other keys in the file, so
// they can be dropped from Config.Keys. It returns how many records it
// rewrote. Records that fail authentication are left as they are.
func (s *Store) Rekey(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	if _, err := s.sharedIndex(ctx); err != nil {
		return 0, err
	}
	buckets, err := s.answerBuckets(ctx)
	if err != nil {
		return 0, err
	}
	buckets = append(buckets, sharedDead)
	total, failed := 0, 0
	for _, bn := range buckets {
		kind := byte(kindAnswer)
		if bn == sharedDead {
			kind = kindDead
		}
		err := s.scanPages(ctx, bn, func(recs []Record) error {
			var olds [][]byte
			var news []Record
			for _, r := range recs {
				if h, _, _, _, err := parseHeader(r.Value); err == nil && h.keyID == s.keys.current {
					continue
				}
				h, pt, err := s.keys.open(r.Value, []byte(bn), r.Key, kind)
				if err != nil {
					failed++
					continue
				}
				olds = append(olds, r.Value)
				news = append(news, Record{Key: r.Key, Value: s.keys.seal(kind, h.t1, h.t2, []byte(bn), r.Key, pt), T1: r.T1, T2: r.T2})
			}
			n, err := s.swapRecords(ctx, bn, olds, news)
			total += n
			return err
		})
		if err != nil {
			return total, err
		}
	}
	n, bad, err := s.rekeyQueue(ctx)
	total += n
	failed += bad
	if err != nil {
		return total, err
	}
	if failed > 0 {
		s.log.Warn("cache: rekey left records that fail authentication", zap.Int("count", failed))
	}
	// The other keys' key check records go last: until then a restart with
	// the old keys still finds its index key.
	var drop [][]byte
	if err := s.scanPages(ctx, sharedMeta, func(recs []Record) error {
		for _, r := range recs {
			k := string(r.Key)
			if strings.HasPrefix(k, keyCheckPrefix) && k[len(keyCheckPrefix):] != s.keys.current {
				drop = append(drop, r.Key)
			}
		}
		return nil
	}); err != nil {
		return total, err
	}
	for _, k := range drop {
		if _, err := s.rb.Delete(ctx, s.cfg.Tenant, sharedMeta, k); err != nil {
			return total, err
		}
	}
	return total, nil
}

// rekeyQueue rewrites the queued messages not sealed under the current key.
func (s *Store) rekeyQueue(ctx context.Context) (total, failed int, err error) {
	err = s.scanQueue(ctx, func(q Queued) error {
		if h, _, _, _, err := parseHeader(q.Value); err == nil && h.keyID == s.keys.current {
			return nil
		}
		aad := s.q.aad(q)
		h, pt, err := s.keys.open(q.Value, bucketOutbox, aad, kindOutbox)
		if err != nil {
			failed++
			return nil
		}
		ok, err := s.q.swap(ctx, q.Seq, q.Value, s.keys.seal(kindOutbox, h.t1, h.t2, bucketOutbox, aad, pt))
		if ok {
			total++
		}
		return err
	})
	return total, failed, err
}

// checkAccess warns about (or refuses, per cfg.OnWideAccess) a store
// directory or file that grants access to the group or others.
func checkAccess(cfg Config, path string, log *zap.Logger) error {
	for _, p := range []string{cfg.Dir, path} {
		fi, err := os.Stat(p)
		if err != nil {
			continue // a missing file is created 0600; other errors surface when opening
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			if cfg.OnWideAccess == AccessRefuse {
				return fmt.Errorf("%w: %s has mode %#o, open to the group or others", ErrUnsafePath, p, mode)
			}
			log.Warn("cache: store path open to the group or others", zap.String("path", p), zap.String("mode", fmt.Sprintf("%#o", mode)))
		}
	}
	return nil
}
