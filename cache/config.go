package cache

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Names of the priority functions ehgate itself stores. A vendor may register
// any other name in Config.Functions.
const (
	FunctionInsurability = "insurability"
	FunctionETK          = "etk"
	FunctionToken        = "token"
)

// Size limits enforced on every write and on every record read from disk.
const (
	// MaxKeyBytes is the longest logical key (or idempotency key, partition or service name).
	MaxKeyBytes = 1024
	// DefaultMaxValueBytes is the default for Config.MaxValueBytes.
	DefaultMaxValueBytes = 1 << 20
	// LimitMaxValueBytes is the largest value Config.MaxValueBytes may allow.
	LimitMaxValueBytes = 16 << 20
)

// Policy says how long the answers of one priority function stay useful. Ages
// are counted from the moment the answer was stored (Entry.StoredAt).
type Policy struct {
	// Fresh is the age below which an answer counts as fresh (Entry.Fresh):
	// a caller need not ask the platform again. 0 = never fresh.
	Fresh time.Duration
	// ServeStale is the age up to which an answer may still be served, for
	// example while the platform is unreachable; Get reports older answers as
	// ErrExpired. 0 = Fresh (an answer is never served stale).
	ServeStale time.Duration
	// Retention is the age after which an answer is purged from disk.
	// 0 = ServeStale.
	Retention time.Duration
}

func (p Policy) normalized() Policy {
	if p.ServeStale == 0 {
		p.ServeStale = p.Fresh
	}
	if p.Retention == 0 {
		p.Retention = p.ServeStale
	}
	return p
}

func (p Policy) validate(name string) error {
	switch {
	case p.Fresh < 0:
		return fmt.Errorf("cache: Functions[%q].Fresh is negative", name)
	case p.ServeStale < 0 || (p.ServeStale > 0 && p.ServeStale < p.Fresh):
		return fmt.Errorf("cache: Functions[%q].ServeStale must be 0 or at least Fresh", name)
	case p.Retention < 0 || (p.Retention > 0 && p.Retention < max(p.Fresh, p.ServeStale)):
		return fmt.Errorf("cache: Functions[%q].Retention must be 0 or at least ServeStale", name)
	case p.Fresh == 0 && p.ServeStale == 0:
		return fmt.Errorf("cache: Functions[%q] would serve nothing: set Fresh or ServeStale", name)
	}
	return nil
}

// DefaultPolicies returns the policies of ehgate's own priority functions:
//
//   - insurability: fresh for 1 hour, served for up to 30 days when the platform
//     is unreachable (the platform's own continuity rule), purged after 31 days;
//   - etk: fresh for 8 hours (the depot's guidance), served while its
//     certificate is valid (store it with NotAfter) and at most 5 years, purged
//     with it;
//   - token: fresh for 1 hour, served up to 12 hours (store it with NotAfter =
//     the token's NotOnOrAfter), purged after 24 hours.
func DefaultPolicies() map[string]Policy {
	return map[string]Policy{
		FunctionInsurability: {Fresh: time.Hour, ServeStale: 30 * 24 * time.Hour, Retention: 31 * 24 * time.Hour},
		FunctionETK:          {Fresh: 8 * time.Hour, ServeStale: 5 * 365 * 24 * time.Hour, Retention: 5 * 365 * 24 * time.Hour},
		FunctionToken:        {Fresh: time.Hour, ServeStale: 12 * time.Hour, Retention: 24 * time.Hour},
	}
}

// Key is a vendor-supplied AES-256 key with its identifier. The identifier is
// written in clear next to every record so the right key is used to read it.
type Key struct {
	// ID names the key: 1 to 64 bytes of letters, digits, '.', '_', '-' or ':'.
	ID string
	// Secret is 32 bytes of key material from the vendor's key store.
	Secret []byte
}

// CorruptAction says what Open does with a store file it cannot use: one that
// is truncated or garbled, or encrypted under keys it was not given.
type CorruptAction int

const (
	// CorruptFail returns the error and leaves the file where it is, so that a
	// restart with the right configuration finds it again. The default.
	CorruptFail CorruptAction = iota
	// CorruptMoveAside renames the file with a timestamp suffix and returns the error.
	CorruptMoveAside
	// CorruptStartFresh renames the file with a timestamp suffix and opens a
	// new, empty store in its place; Store.Recovered reports what happened.
	// Note that a file written under keys missing from Config.Keys is set
	// aside too: restore it by renaming it back and configuring its key.
	CorruptStartFresh
)

// String returns the name of the action.
func (a CorruptAction) String() string {
	switch a {
	case CorruptFail:
		return "fail"
	case CorruptMoveAside:
		return "move-aside"
	case CorruptStartFresh:
		return "start-fresh"
	}
	return fmt.Sprintf("CorruptAction(%d)", int(a))
}

// AccessAction says what Open does when the store directory or file grants
// access to the group or others.
type AccessAction int

const (
	// AccessWarn logs a warning naming the path and its mode, and opens. The default.
	AccessWarn AccessAction = iota
	// AccessRefuse fails with ErrUnsafePath.
	AccessRefuse
)

// OutboxConfig tunes Outbox.Replay.
type OutboxConfig struct {
	// Concurrency is how many partitions Replay delivers at the same time
	// (entries of one partition are always delivered one after the other, in
	// order). 0 = 4.
	Concurrency int
	// InitialBackoff is the first delay after a transient failure; later delays
	// grow exponentially with ±50 % jitter. 0 = 500 ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the delay between two attempts of one entry. 0 = 1 minute.
	MaxBackoff time.Duration
	// MaxElapsed is how long Replay keeps retrying the head entry of a
	// partition before giving up on that partition for this Replay call.
	// 0 = until the context passed to Replay ends.
	MaxElapsed time.Duration
	// Lease is, with a Config.Backend, how long a partition claimed by one
	// instance's Replay stays its own without news from it: an instance that
	// dies leaves its partitions to the others after at most Lease. Every
	// send of a replayed message is cut off after three quarters of Lease,
	// so a slow instance never delivers after its lease could have passed
	// to another. Unused with the bbolt file. 0 = 30 seconds.
	Lease time.Duration
}

// Config configures a Store. Dir (or Backend) and Keys are required; every
// other zero field takes the default its comment names.
type Config struct {
	// Dir is the directory holding the store files (one per tenant). Required
	// unless Backend is set; created with mode 0700 if missing.
	Dir string
	// Backend, if set, keeps the records in a shared store (a database used by
	// every instance of a fleet, see package pgstore) instead of the bbolt
	// file in Dir; nil = the file. Records are sealed by the Store either way.
	// With a Backend, the memory LRU is not used (another instance may have
	// replaced or deleted an answer), and OnCorrupt, LockTimeout and
	// SkipIntegrityCheck do not apply. The Store does not close it.
	Backend Backend
	// Tenant names the store file: Dir/<Tenant>.db, or the tenant's records
	// in the Backend. 1 to 64 bytes of letters, digits, '.', '_' or '-'.
	// "" = "default".
	Tenant string
	// Keys are the vendor's encryption keys. Keys[0] is the current key: every
	// new record is encrypted under it. Older keys stay readable as long as they
	// are listed (Store.Rekey rewrites their records under the current key).
	// Required.
	Keys []Key
	// Functions are the priority functions this store accepts, with their
	// policies. Entries are added to (or replace) DefaultPolicies; nil =
	// DefaultPolicies only. Names: 1 to 64 bytes of letters, digits, '.', '_', '-' or ':'.
	Functions map[string]Policy
	// MemoryEntries is the size of the in-memory LRU of decrypted answers.
	// 0 = 10,000; negative is invalid.
	MemoryEntries int
	// MemoryBytes bounds the bytes of the values in the memory LRU (least
	// recently used answers leave first). 0 = 64 MiB; negative is invalid.
	MemoryBytes int64
	// MaxValueBytes bounds a stored value and an outbox payload.
	// 0 = DefaultMaxValueBytes (1 MiB); at most LimitMaxValueBytes.
	MaxValueBytes int
	// PurgeInterval is how often expired answers are purged in the background
	// (a purge also runs at Open). 0 = 1 hour; negative = no background purge.
	PurgeInterval time.Duration
	// OnCorrupt says what Open does with an unusable file. Zero = CorruptFail.
	OnCorrupt CorruptAction
	// OnWideAccess says what Open does when Dir or the store file grants any
	// access to the group or others (mode & 0o077): the records are
	// encrypted, but their number, sizes and times are visible, and the file
	// can be deleted or replaced. Zero = AccessWarn. A symbolic link as the
	// store file is always refused (ErrUnsafePath).
	OnWideAccess AccessAction
	// LockTimeout is how long Open waits for another process holding the
	// file. 0 = 1 second.
	LockTimeout time.Duration
	// SkipIntegrityCheck skips the page-by-page consistency check of the file
	// at Open (the check reads the whole file once). Default false: check.
	SkipIntegrityCheck bool
	// DeferredFlush is how long the writer waits, after a Put with the
	// Deferred option, for more deferred answers to commit together (one
	// transaction, one fsync) when no durable write comes first. It bounds
	// what a crash can lose: the deferred answers of the last DeferredFlush
	// (plus one commit). 0 = 10 ms; negative is invalid.
	DeferredFlush time.Duration
	// Outbox tunes the replay of queued writes.
	Outbox OutboxConfig
}

// Validate reports the first invalid field of c, by name.
func (c Config) Validate() error {
	if c.Dir == "" && c.Backend == nil {
		return fmt.Errorf("cache: Config.Dir is empty")
	}
	if c.Tenant != "" && !validName(c.Tenant, false) {
		return fmt.Errorf("cache: Config.Tenant must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if len(c.Keys) == 0 {
		return fmt.Errorf("cache: Config.Keys is empty")
	}
	seen := map[string]bool{}
	for i, k := range c.Keys {
		if !validName(k.ID, true) {
			return fmt.Errorf("cache: Config.Keys[%d].ID must be 1 to 64 letters, digits, '.', '_', '-' or ':'", i)
		}
		if len(k.Secret) != 32 {
			return fmt.Errorf("cache: Config.Keys[%d].Secret is %d bytes, want 32", i, len(k.Secret))
		}
		if seen[k.ID] {
			return fmt.Errorf("cache: Config.Keys[%d].ID %q is listed twice", i, k.ID)
		}
		seen[k.ID] = true
	}
	for name, p := range c.Functions {
		if !validName(name, true) {
			return fmt.Errorf("cache: Config.Functions has an invalid name %q", name)
		}
		if err := p.validate(name); err != nil {
			return err
		}
	}
	if c.MemoryEntries < 0 {
		return fmt.Errorf("cache: Config.MemoryEntries is negative")
	}
	if c.MemoryBytes < 0 {
		return fmt.Errorf("cache: Config.MemoryBytes is negative")
	}
	if c.MaxValueBytes < 0 || c.MaxValueBytes > LimitMaxValueBytes {
		return fmt.Errorf("cache: Config.MaxValueBytes must be between 0 and %d", LimitMaxValueBytes)
	}
	if c.OnCorrupt < CorruptFail || c.OnCorrupt > CorruptStartFresh {
		return fmt.Errorf("cache: Config.OnCorrupt is not a CorruptAction")
	}
	if c.OnWideAccess < AccessWarn || c.OnWideAccess > AccessRefuse {
		return fmt.Errorf("cache: Config.OnWideAccess is not an AccessAction")
	}
	if c.LockTimeout < 0 {
		return fmt.Errorf("cache: Config.LockTimeout is negative")
	}
	if c.DeferredFlush < 0 {
		return fmt.Errorf("cache: Config.DeferredFlush is negative")
	}
	o := c.Outbox
	if o.Concurrency < 0 || o.InitialBackoff < 0 || o.MaxBackoff < 0 || o.MaxElapsed < 0 || o.Lease < 0 {
		return fmt.Errorf("cache: Config.Outbox has a negative field")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Tenant == "" {
		c.Tenant = "default"
	}
	if c.MemoryEntries == 0 {
		c.MemoryEntries = 10_000
	}
	if c.MemoryBytes == 0 {
		c.MemoryBytes = 64 << 20
	}
	if c.MaxValueBytes == 0 {
		c.MaxValueBytes = DefaultMaxValueBytes
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = time.Hour
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = time.Second
	}
	if c.DeferredFlush == 0 {
		c.DeferredFlush = 10 * time.Millisecond
	}
	if c.Outbox.Concurrency == 0 {
		c.Outbox.Concurrency = 4
	}
	if c.Outbox.InitialBackoff == 0 {
		c.Outbox.InitialBackoff = 500 * time.Millisecond
	}
	if c.Outbox.MaxBackoff == 0 {
		c.Outbox.MaxBackoff = time.Minute
	}
	if c.Outbox.Lease == 0 {
		c.Outbox.Lease = 30 * time.Second
	}
	return c
}

func validName(s string, colon bool) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		case c == ':' && colon:
		default:
			return false
		}
	}
	return true
}

// Option sets an injected dependency of a Store.
type Option func(*options)

type options struct {
	now func() time.Time
	log *zap.Logger
}

// WithClock makes the Store read the time from now (ages, freshness, purge,
// outbox timestamps). Default time.Now. Background intervals use real timers.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithLogger sets the logger. Default zap.NewNop(). The Store never logs keys,
// values or payloads; it logs function names, counts and file paths.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
