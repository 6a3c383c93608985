// Package pgstore keeps ehgate's encrypted store and outbox in PostgreSQL, so
// that every instance of a fleet shares them: an answer stored by one
// instance serves a fallback on another, a write queued on one is replayed by
// any (exactly once, in order per partition, taken over after an instance
// dies), and the instances renew one identity's STS token once, not once each.
//
// A *DB is a cache.Backend: give it to cache.Config.Backend (or
// connector.Config.StoreBackend). It only ever receives sealed records: the
// cache encrypts values (AES-256-GCM under the vendor's keys) and replaces
// logical keys, partitions and idempotency keys by HMACs before they reach
// the database, so neither a database administrator nor a leaked backup sees
// an SSIN, an answer or a payload.
//
//	db, err := pgstore.Open(ctx, pgstore.Config{URL: "postgres://ehgate@db.internal/ehgate"})
//	if err != nil { ... }
//	defer db.Close()
//	st, err := cache.Open(cache.Config{Backend: db, Tenant: "pharmacy-1", Keys: keys})
//
// # Schema
//
// Open creates and migrates its tables (ehgate_schema, ehgate_record,
// ehgate_queue, ehgate_lease, sequence ehgate_queue_seq) in the connection's
// current schema. Migrations are versioned (ehgate_schema.version) and run in
// one transaction under a transaction-level advisory lock, so any number of
// instances may start at once; an instance that finds the database down at
// Open migrates on its first call after it is back.
//
// # Failures
//
// Every query runs under Config.QueryTimeout; the pool holds at most
// Config.MaxConns connections. A failure to reach the database, or a query
// that fails or times out, is returned wrapping cache.ErrUnavailable, and the
// cache reports it to its caller (never a silent loss); nothing is retried
// behind the caller's back, and the next call uses the database again.
//
// DB is safe for concurrent use.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Config configures a DB. URL is required; every other zero field takes the
// default its comment names.
type Config struct {
	// URL is the PostgreSQL connection string (URL or key=value form, as pgx
	// accepts it; it may carry sslmode and the like). Required. It is never logged.
	URL string
	// MaxConns bounds the connection pool. 0 = 10. Each waiting token
	// renewal (LockRenewal) holds one connection while it waits.
	MaxConns int32
	// QueryTimeout bounds every query (and the wait for a pooled connection).
	// 0 = 5 seconds.
	QueryTimeout time.Duration
	// ConnectTimeout bounds the opening of one connection. 0 = 5 seconds.
	ConnectTimeout time.Duration
	// MaxBatch is how many queued writes one commit may carry (concurrent
	// Enqueues are grouped into one INSERT and one commit), and how many
	// records one grouped read may fetch (concurrent Gets are grouped into
	// one SELECT). 0 = 512.
	MaxBatch int
}

// Validate reports the first invalid field of c, by name.
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("pgstore: Config.URL is empty")
	case c.MaxConns < 0:
		return fmt.Errorf("pgstore: Config.MaxConns is negative")
	case c.QueryTimeout < 0:
		return fmt.Errorf("pgstore: Config.QueryTimeout is negative")
	case c.ConnectTimeout < 0:
		return fmt.Errorf("pgstore: Config.ConnectTimeout is negative")
	case c.MaxBatch < 0:
		return fmt.Errorf("pgstore: Config.MaxBatch is negative")
	}
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		// pgx's message may quote the connection string: keep only that it failed.
		return fmt.Errorf("pgstore: Config.URL is not a valid connection string")
	}
	return nil
}

// DefaultConfig returns the defaults for a connection string.
func DefaultConfig(url string) Config {
	return Config{URL: url, MaxConns: 10, QueryTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, MaxBatch: 512}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig(c.URL)
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = d.QueryTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	return c
}

// Option sets an injected dependency of a DB.
type Option func(*DB)

// WithLogger sets the logger. Default zap.NewNop(). It never receives
// records, keys or the connection string.
func WithLogger(l *zap.Logger) Option {
	return func(db *DB) {
		if l != nil {
			db.log = l
		}
	}
}

// DB is a cache.Backend on a PostgreSQL database. Close it after the Stores
// that use it.
type DB struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *zap.Logger

	migrateMu sync.Mutex
	migrated  atomic.Bool

	appends chan *appendOp
	gets    chan *getOp
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	closed  atomic.Bool
}

var (
	_ cache.Backend        = (*DB)(nil)
	_ cache.RequeueBackend = (*DB)(nil)
)

// Open checks cfg, sets up the connection pool and migrates the schema. A
// database that cannot be reached does not fail Open (availability first):
// the schema is migrated by the first call that reaches it. Open returns an
// error for an invalid configuration, or when the database answers but the
// migration fails.
func Open(ctx context.Context, cfg Config, opts ...Option) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: Config.URL is not a valid connection string")
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = 0
	pc.HealthCheckPeriod = 30 * time.Second
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "ehgate"
	// The server stops a statement the client has given up on, too.
	pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.QueryTimeout.Milliseconds(), 10)
	db := &DB{cfg: cfg, log: zap.NewNop(), appends: make(chan *appendOp), gets: make(chan *getOp), done: make(chan struct{})}
	for _, o := range opts {
		o(db)
	}
	db.pool, err = pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connection pool: %w", err)
	}
	for range appendCommitters {
		db.wg.Add(1)
		go db.appendLoop()
	}
	for range getFetchers {
		db.wg.Add(1)
		go db.getLoop()
	}
	if err := db.ready(ctx); err != nil {
		if !errors.Is(err, cache.ErrUnavailable) {
			db.Close()
			return nil, err
		}
		db.log.Warn("pgstore: database unavailable at open; the schema is checked on first use", zap.Error(err))
	}
	return db, nil
}

// Close stops the batching of appends and closes the pool. Calls after Close
// fail with cache.ErrClosed. It is safe to call more than once.
func (db *DB) Close() {
	db.once.Do(func() {
		db.closed.Store(true)
		close(db.done)
		db.wg.Wait()
		db.pool.Close()
	})
}

// Ping checks that the database answers (within Config.QueryTimeout).
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.query(ctx)
	defer cancel()
	return db.fail(ctx, "ping", db.pool.Ping(ctx))
}

// query bounds one query by Config.QueryTimeout.
func (db *DB) query(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.cfg.QueryTimeout)
}

// fail turns a database error into one wrapping cache.ErrUnavailable, or into
// the caller's own context error when that ended first. qctx is the query's
// context (the caller's with the query timeout).
func (db *DB) fail(qctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if db.closed.Load() {
		return cache.ErrClosed
	}
	if cerr := context.Cause(qctx); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return cerr
	}
	return fmt.Errorf("%w: pgstore: %s: %w", cache.ErrUnavailable, op, err)
}

// schema holds the migrations, in order; version i+1 is schema[i]. Never edit
// a released one: append a new one.
var schema = []string{
	`CREATE SEQUENCE ehgate_queue_seq;
	CREATE TABLE ehgate_record (
		tenant text NOT NULL,
		bucket text NOT NULL,
		key bytea NOT NULL,
		value bytea NOT NULL,
		t1 bigint NOT NULL,
		t2 bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (tenant, bucket, key)
	);
	CREATE INDEX ehgate_record_t1 ON ehgate_record (tenant, bucket, t1);
	CREATE TABLE ehgate_queue (
		seq bigint PRIMARY KEY DEFAULT nextval('ehgate_queue_seq'),
		tenant text NOT NULL,
		part bytea NOT NULL,
		idem bytea NOT NULL,
		value bytea NOT NULL,
		enqueued_at bigint NOT NULL,
		UNIQUE (tenant, idem)
	);
	ALTER SEQUENCE ehgate_queue_seq OWNED BY ehgate_queue.seq;
	CREATE INDEX ehgate_queue_part ON ehgate_queue (tenant, part, seq);
	CREATE INDEX ehgate_queue_tenant ON ehgate_queue (tenant, seq);
	CREATE TABLE ehgate_lease (
		tenant text NOT NULL,
		part bytea NOT NULL,
		owner text NOT NULL,
		until timestamptz NOT NULL,
		PRIMARY KEY (tenant, part)
	);`,
}

// SchemaVersion is the schema version this package migrates to.
var SchemaVersion = len(schema)

// migrateLock is the advisory lock key held while migrating.
const migrateLock = 0x6568676174650001 // "ehgate" 1

// ready migrates the schema once per DB (retried until it succeeds).
func (db *DB) ready(ctx context.Context) error {
	if db.migrated.Load() {
		return nil
	}
	if db.closed.Load() {
		return cache.ErrClosed
	}
	db.migrateMu.Lock()
	defer db.migrateMu.Unlock()
	if db.migrated.Load() {
		return nil
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	db.migrated.Store(true)
	return nil
}

func (db *DB) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*db.cfg.QueryTimeout)
	defer cancel()
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return db.fail(ctx, "migrate", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS ehgate_schema (version integer NOT NULL)`); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM ehgate_schema`).Scan(&v); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	if v > len(schema) {
		return fmt.Errorf("pgstore: database schema version %d is newer than this program's %d: upgrade the program", v, len(schema))
	}
	if v == len(schema) {
		return nil
	}
	for i := v; i < len(schema); i++ {
		if _, err := tx.Exec(ctx, schema[i]); err != nil {
			return fmt.Errorf("pgstore: migrating the schema to version %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ehgate_schema`); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ehgate_schema (version) VALUES ($1)`, len(schema)); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return db.fail(ctx, "migrate", err)
	}
	db.log.Info("pgstore: schema migrated", zap.Int("from", v), zap.Int("to", len(schema)))
	return nil
}
