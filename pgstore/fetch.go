package pgstore

import (
	"context"
	"errors"

	"github.com/ehgate/ehgate/cache"
	"github.com/jackc/pgx/v5"
)

// Reads of single records (Backend.Get: a fallback answer, the key check of
// a tenant) are grouped like appends: concurrent Gets wait for the fetching
// goroutine, which sends every Get waiting at that moment (up to
// Config.MaxBatch) as one SELECT, so a hundred concurrent fallback reads cost
// a few round trips on one pooled connection instead of one each. A Get
// alone runs its own single-row SELECT at once. A read the database is slow
// to answer holds the Gets that arrive meanwhile, for at most
// Config.QueryTimeout. Every Get reads the database:
// nothing is kept in memory between calls (another instance may replace or
// delete a record at any time).

// getOp is one Get waiting for a grouped read.
type getOp struct {
	tenant, bucket string
	key            []byte
	value          []byte
	err            error
	done           chan struct{}
}

// getFetchers is how many grouped reads may be in flight at once. One: a
// Get that arrives during a read waits for it and goes in the next, whose
// group is then larger (fewer statements, fewer database processes woken).
// Measured with 100 callers on 2 shared cores (BenchmarkPostgresGet100Callers,
// three alternations at load 7 to 10): 1, 2 and 3 gave the same throughput
// and p99 within the noise, but 2 and 3 had a p99.9 of 15 to 125 ms and reads
// stalled up to 0.97 s, where 1 had a p99.9 of 12 to 21 ms and no read over
// 120 ms.
const getFetchers = 1

// Get implements cache.Backend. If ctx ends before the answer, Get returns
// ctx.Err() (the grouped read it joined still completes for the others).
func (db *DB) Get(ctx context.Context, tenant, bucket string, key []byte) ([]byte, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	op := &getOp{tenant: tenant, bucket: bucket, key: key, done: make(chan struct{})}
	if err := handOff(ctx, db, db.gets, op, op.done); err != nil {
		return nil, err
	}
	return op.value, op.err
}

// handOff gives op to the loop reading ch (which groups it with others) and
// waits until that loop closes done. When the DB closes before the loop took
// op it returns cache.ErrClosed; when ctx ends first, ctx.Err() (a taken op
// is still completed, for the others of its group).
func handOff[T any](ctx context.Context, db *DB, ch chan<- T, op T, done <-chan struct{}) error {
	select {
	case ch <- op:
	case <-db.done:
		return cache.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) getLoop() {
	defer db.wg.Done()
	for {
		select {
		case op := <-db.gets:
			batch := []*getOp{op}
		drain:
			for len(batch) < db.cfg.MaxBatch {
				select {
				case op := <-db.gets:
					batch = append(batch, op)
				default:
					break drain
				}
			}
			db.fetch(batch)
		case <-db.done:
			return
		}
	}
}

// fetch reads the records of batch, with one statement, and completes each op.
func (db *DB) fetch(batch []*getOp) {
	ctx, cancel := db.query(context.Background())
	defer cancel()
	defer func() {
		for _, op := range batch {
			close(op.done)
		}
	}()
	if len(batch) == 1 {
		op := batch[0]
		err := db.pool.QueryRow(ctx, `SELECT value FROM ehgate_record WHERE tenant = $1 AND bucket = $2 AND key = $3`,
			op.tenant, op.bucket, op.key).Scan(&op.value)
		if errors.Is(err, pgx.ErrNoRows) {
			op.value, err = nil, nil
		}
		op.err = db.fail(ctx, "get", err)
		return
	}
	tenants := make([]string, len(batch))
	buckets := make([]string, len(batch))
	keys := make([][]byte, len(batch))
	for i, op := range batch {
		tenants[i], buckets[i], keys[i] = op.tenant, op.bucket, op.key
	}
	// The ordinality n (1-based) says which op a row answers; ops absent
	// from the result have no record.
	rows, err := db.pool.Query(ctx, `SELECT x.n, r.value
		FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS x(t, b, k, n)
		JOIN ehgate_record r ON r.tenant = x.t AND r.bucket = x.b AND r.key = x.k`, tenants, buckets, keys)
	if err == nil {
		for rows.Next() {
			var n int64
			var v []byte
			if err = rows.Scan(&n, &v); err != nil {
				break
			}
			if n >= 1 && n <= int64(len(batch)) {
				batch[n-1].value = v
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err = db.fail(ctx, "get", err); err != nil {
		for _, op := range batch {
			op.value, op.err = nil, err
		}
	}
}
