package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/jackc/pgx/v5"
)

// appendOp is one Append waiting for a grouped commit.
type appendOp struct {
	tenant string
	qs     []cache.Queued
	seqs   []uint64
	err    error
	done   chan struct{}
}

// Append implements cache.Backend. Concurrent Appends are grouped: one
// INSERT and one commit carry up to Config.MaxBatch records, so many
// producers pay for few commits (each still returns only once its records
// are committed). If ctx ends first, Append returns ctx.Err() and the records
// may still be committed afterwards (outcome unknown: repeat with the same
// idempotency keys).
func (db *DB) Append(ctx context.Context, tenant string, qs []cache.Queued) ([]uint64, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	op := &appendOp{tenant: tenant, qs: qs, done: make(chan struct{})}
	if err := handOff(ctx, db, db.appends, op, op.done); err != nil {
		return nil, err
	}
	return op.seqs, op.err
}

func (db *DB) appendLoop() {
	defer db.wg.Done()
	for {
		var batch []*appendOp
		select {
		case op := <-db.appends:
			batch = append(batch, op)
			n := len(op.qs)
		drain:
			for n < db.cfg.MaxBatch {
				select {
				case op := <-db.appends:
					batch = append(batch, op)
					n += len(op.qs)
				default:
					break drain
				}
			}
			db.commitAppends(batch)
		case <-db.done:
			return
		}
	}
}

type tenantKey struct{ tenant, idem string }

// commitAppends inserts the batch's records with one statement (one implicit
// transaction), in the order of the batch, skipping idempotency keys already
// queued.
func (db *DB) commitAppends(batch []*appendOp) {
	var (
		tenants       []string
		parts, idems  [][]byte
		values        [][]byte
		enqueuedAt    []int64
		alreadyQueued = map[tenantKey]bool{}
	)
	for _, op := range batch {
		for _, q := range op.qs {
			tenants = append(tenants, op.tenant)
			parts = append(parts, q.Partition)
			idems = append(idems, q.IdempotencyKey)
			values = append(values, q.Value)
			enqueuedAt = append(enqueuedAt, q.EnqueuedAt)
		}
	}
	ctx, cancel := db.query(context.Background())
	defer cancel()
	rows, err := db.pool.Query(ctx, `INSERT INTO ehgate_queue (tenant, part, idem, value, enqueued_at)
		SELECT t, p, i, v, e FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bigint[]) WITH ORDINALITY AS x(t, p, i, v, e, n)
		ORDER BY n
		ON CONFLICT (tenant, idem) DO NOTHING
		RETURNING tenant, idem, seq`, tenants, parts, idems, values, enqueuedAt)
	seqOf := map[tenantKey]uint64{}
	if err == nil {
		for rows.Next() {
			var t string
			var idem []byte
			var seq int64
			if err = rows.Scan(&t, &idem, &seq); err != nil {
				break
			}
			seqOf[tenantKey{t, string(idem)}] = uint64(seq)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	err = db.fail(ctx, "append", err)
	for _, op := range batch {
		op.err = err
		if err == nil {
			op.seqs = make([]uint64, len(op.qs))
			for i, q := range op.qs {
				k := tenantKey{op.tenant, string(q.IdempotencyKey)}
				if !alreadyQueued[k] {
					op.seqs[i] = seqOf[k] // 0 if it was queued before this batch
					alreadyQueued[k] = true
				}
			}
		}
		close(op.done)
	}
}

// NextSeq implements cache.Backend.
func (db *DB) NextSeq(ctx context.Context) (uint64, error) {
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	var seq int64
	err := db.pool.QueryRow(qctx, `SELECT nextval('ehgate_queue_seq')`).Scan(&seq)
	return uint64(seq), db.fail(qctx, "next sequence", err)
}

// Queue implements cache.Backend.
func (db *DB) Queue(ctx context.Context, tenant string, part []byte, after uint64, limit int) ([]cache.Queued, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	if part == nil {
		rows, err = db.pool.Query(qctx, `SELECT seq, part, idem, value, enqueued_at FROM ehgate_queue
			WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3`, tenant, int64(after), limit)
	} else {
		rows, err = db.pool.Query(qctx, `SELECT seq, part, idem, value, enqueued_at FROM ehgate_queue
			WHERE tenant = $1 AND part = $2 AND seq > $3 ORDER BY seq LIMIT $4`, tenant, part, int64(after), limit)
	}
	if err != nil {
		return nil, db.fail(qctx, "queue", err)
	}
	var out []cache.Queued
	for rows.Next() {
		var q cache.Queued
		var seq int64
		if err := rows.Scan(&seq, &q.Partition, &q.IdempotencyKey, &q.Value, &q.EnqueuedAt); err != nil {
			rows.Close()
			return nil, db.fail(qctx, "queue", err)
		}
		q.Seq = uint64(seq)
		out = append(out, q)
	}
	return out, db.fail(qctx, "queue", rows.Err())
}

// QueueStats implements cache.Backend.
func (db *DB) QueueStats(ctx context.Context, tenant string) (int, int64, int64, error) {
	if err := db.ready(ctx); err != nil {
		return 0, 0, 0, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	var n, oldest, bytes int64
	err := db.pool.QueryRow(qctx, `SELECT count(*), coalesce(min(enqueued_at), 0), coalesce(sum(octet_length(value)), 0)
		FROM ehgate_queue WHERE tenant = $1`, tenant).Scan(&n, &oldest, &bytes)
	return int(n), oldest, bytes, db.fail(qctx, "queue stats", err)
}

// Claim implements cache.Backend. It picks the partitions with queued records
// whose lease is absent or expired, oldest head first, and takes their leases
// with one INSERT … ON CONFLICT DO UPDATE … WHERE the lease is expired: the
// row lock that statement takes makes two instances racing for a partition
// serialise, and the loser's WHERE sees the winner's fresh lease, so exactly
// one gets it (the same guarantee as SELECT … FOR UPDATE SKIP LOCKED on a
// lease row, without holding a transaction open during delivery). Lease
// times are the database's clock, so instances' clocks need not agree.
func (db *DB) Claim(ctx context.Context, tenant, owner string, lease time.Duration, max int) ([][]byte, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	rows, err := db.pool.Query(qctx, `WITH cand AS (
			SELECT q.part, min(q.seq) AS head FROM ehgate_queue q
			WHERE q.tenant = $1 AND NOT EXISTS (
				SELECT 1 FROM ehgate_lease l WHERE l.tenant = $1 AND l.part = q.part AND l.until > now())
			GROUP BY q.part ORDER BY head LIMIT $4
		)
		INSERT INTO ehgate_lease (tenant, part, owner, until)
		SELECT $1, part, $2, now() + $3 * interval '1 microsecond' FROM cand
		ON CONFLICT (tenant, part) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
			WHERE ehgate_lease.until <= now()
		RETURNING part`, tenant, owner, lease.Microseconds(), max)
	if err != nil {
		return nil, db.fail(qctx, "claim", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	return out, db.fail(qctx, "claim", err)
}

// Renew implements cache.Backend.
func (db *DB) Renew(ctx context.Context, tenant, owner string, part []byte, lease time.Duration) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `UPDATE ehgate_lease SET until = now() + $4 * interval '1 microsecond'
		WHERE tenant = $1 AND part = $2 AND owner = $3`, tenant, part, owner, lease.Microseconds())
	if err != nil {
		return false, db.fail(qctx, "renew", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release implements cache.Backend.
func (db *DB) Release(ctx context.Context, tenant, owner string, part []byte) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	_, err := db.pool.Exec(qctx, `DELETE FROM ehgate_lease WHERE tenant = $1 AND part = $2 AND owner = $3`, tenant, part, owner)
	return db.fail(qctx, "release", err)
}

// Dequeue implements cache.Backend.
func (db *DB) Dequeue(ctx context.Context, tenant string, seq uint64, dead *cache.Record) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	if dead == nil {
		tag, err := db.pool.Exec(qctx, `DELETE FROM ehgate_queue WHERE tenant = $1 AND seq = $2`, tenant, int64(seq))
		if err != nil {
			return false, db.fail(qctx, "dequeue", err)
		}
		return tag.RowsAffected() > 0, nil
	}
	tx, err := db.pool.Begin(qctx)
	if err != nil {
		return false, db.fail(qctx, "dequeue", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	tag, err := tx.Exec(qctx, `DELETE FROM ehgate_queue WHERE tenant = $1 AND seq = $2`, tenant, int64(seq))
	if err != nil {
		return false, db.fail(qctx, "dequeue", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if dead != nil {
		if _, err := tx.Exec(qctx, `INSERT INTO ehgate_record (tenant, bucket, key, value, t1, t2) VALUES ($1, 'dead', $2, $3, $4, $5)
			ON CONFLICT (tenant, bucket, key) DO UPDATE SET value = EXCLUDED.value, t1 = EXCLUDED.t1, t2 = EXCLUDED.t2`,
			tenant, dead.Key, dead.Value, dead.T1, dead.T2); err != nil {
			return false, db.fail(qctx, "dequeue", err)
		}
	}
	if err := tx.Commit(qctx); err != nil {
		return false, db.fail(qctx, "dequeue", err)
	}
	return true, nil
}

// Requeue implements cache.RequeueBackend: the dead letter is deleted and the
// message queued in one transaction.
func (db *DB) Requeue(ctx context.Context, tenant string, deadKey []byte, q cache.Queued) (uint64, bool, error) {
	if err := db.ready(ctx); err != nil {
		return 0, false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tx, err := db.pool.Begin(qctx)
	if err != nil {
		return 0, false, db.fail(qctx, "requeue", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	tag, err := tx.Exec(qctx, `DELETE FROM ehgate_record WHERE tenant = $1 AND bucket = 'dead' AND key = $2`, tenant, deadKey)
	if err != nil {
		return 0, false, db.fail(qctx, "requeue", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, false, nil
	}
	var seq int64
	err = tx.QueryRow(qctx, `INSERT INTO ehgate_queue (tenant, part, idem, value, enqueued_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant, idem) DO NOTHING RETURNING seq`, tenant, q.Partition, q.IdempotencyKey, q.Value, q.EnqueuedAt).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		seq, err = 0, nil // already queued: the dead letter is just removed
	}
	if err != nil {
		return 0, false, db.fail(qctx, "requeue", err)
	}
	if err := tx.Commit(qctx); err != nil {
		return 0, false, db.fail(qctx, "requeue", err)
	}
	return uint64(seq), true, nil
}

// SwapQueued implements cache.Backend.
func (db *DB) SwapQueued(ctx context.Context, tenant string, seq uint64, old, value []byte) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `UPDATE ehgate_queue SET value = $4 WHERE tenant = $1 AND seq = $2 AND value = $3`,
		tenant, int64(seq), old, value)
	if err != nil {
		return false, db.fail(qctx, "swap", err)
	}
	return tag.RowsAffected() == 1, nil
}

// appendCommitters is how many grouped commits of appends may be in flight at
// once: while one waits for its commit (the WAL flush), the next gathers the
// appends that arrive meanwhile, and concurrent commits share WAL flushes.
const appendCommitters = 4
