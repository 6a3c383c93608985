package pgstore

import (
	"context"

	"github.com/ehgate/ehgate/cache"
	"github.com/jackc/pgx/v5"
)

// Put implements cache.Backend.
func (db *DB) Put(ctx context.Context, tenant, bucket string, r cache.Record) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	_, err := db.pool.Exec(qctx, `INSERT INTO ehgate_record (tenant, bucket, key, value, t1, t2) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, bucket, key) DO UPDATE SET value = EXCLUDED.value, t1 = EXCLUDED.t1, t2 = EXCLUDED.t2`,
		tenant, bucket, r.Key, r.Value, r.T1, r.T2)
	return db.fail(qctx, "put", err)
}

// PutNewer implements cache.Backend.
func (db *DB) PutNewer(ctx context.Context, tenant, bucket string, r cache.Record) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `INSERT INTO ehgate_record (tenant, bucket, key, value, t1, t2) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant, bucket, key) DO UPDATE SET value = EXCLUDED.value, t1 = EXCLUDED.t1, t2 = EXCLUDED.t2
		WHERE ehgate_record.t1 <= EXCLUDED.t1`,
		tenant, bucket, r.Key, r.Value, r.T1, r.T2)
	if err != nil {
		return false, db.fail(qctx, "put", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Create implements cache.Backend: the records go in with one statement, in
// one transaction that first takes a transaction-level advisory lock on the
// tenant and bucket, so that of several instances creating the same bucket
// exactly one writes.
func (db *DB) Create(ctx context.Context, tenant, bucket string, recs []cache.Record) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tx, err := db.pool.Begin(qctx)
	if err != nil {
		return false, db.fail(qctx, "create", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(qctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "ehgate create "+tenant+"/"+bucket); err != nil {
		return false, db.fail(qctx, "create", err)
	}
	var n int
	if err := tx.QueryRow(qctx, `SELECT count(*) FROM ehgate_record WHERE tenant = $1 AND bucket = $2`, tenant, bucket).Scan(&n); err != nil {
		return false, db.fail(qctx, "create", err)
	}
	if n > 0 {
		return false, nil
	}
	for _, r := range recs {
		if _, err := tx.Exec(qctx, `INSERT INTO ehgate_record (tenant, bucket, key, value, t1, t2) VALUES ($1, $2, $3, $4, $5, $6)`,
			tenant, bucket, r.Key, r.Value, r.T1, r.T2); err != nil {
			return false, db.fail(qctx, "create", err)
		}
	}
	if err := tx.Commit(qctx); err != nil {
		return false, db.fail(qctx, "create", err)
	}
	return true, nil
}

// Swap implements cache.Backend.
func (db *DB) Swap(ctx context.Context, tenant, bucket string, old []byte, r cache.Record) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `UPDATE ehgate_record SET value = $5, t1 = $6, t2 = $7
		WHERE tenant = $1 AND bucket = $2 AND key = $3 AND value = $4`,
		tenant, bucket, r.Key, old, r.Value, r.T1, r.T2)
	if err != nil {
		return false, db.fail(qctx, "swap", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Delete implements cache.Backend.
func (db *DB) Delete(ctx context.Context, tenant, bucket string, key []byte) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `DELETE FROM ehgate_record WHERE tenant = $1 AND bucket = $2 AND key = $3`, tenant, bucket, key)
	if err != nil {
		return false, db.fail(qctx, "delete", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Expired implements cache.Backend.
func (db *DB) Expired(ctx context.Context, tenant, bucket string, storedBefore, now int64, after []byte, limit int) ([]cache.Record, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	if after == nil {
		after = []byte{}
	}
	rows, err := db.pool.Query(qctx, `SELECT key, value, t1, t2 FROM ehgate_record
		WHERE tenant = $1 AND bucket = $2 AND key > $3 AND (t1 <= $4 OR (t2 <> 0 AND t2 <= $5))
		ORDER BY key LIMIT $6`, tenant, bucket, after, storedBefore, now, limit)
	if err != nil {
		return nil, db.fail(qctx, "purge", err)
	}
	return db.records(qctx, rows, "purge")
}

// DeleteRecord implements cache.Backend.
func (db *DB) DeleteRecord(ctx context.Context, tenant, bucket string, key, value []byte) (bool, error) {
	if err := db.ready(ctx); err != nil {
		return false, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `DELETE FROM ehgate_record WHERE tenant = $1 AND bucket = $2 AND key = $3 AND value = $4`, tenant, bucket, key, value)
	if err != nil {
		return false, db.fail(qctx, "purge", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Scan implements cache.Backend.
func (db *DB) Scan(ctx context.Context, tenant, bucket string, after []byte, limit int) ([]cache.Record, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	if after == nil {
		after = []byte{}
	}
	rows, err := db.pool.Query(qctx, `SELECT key, value, t1, t2 FROM ehgate_record
		WHERE tenant = $1 AND bucket = $2 AND key > $3 ORDER BY key LIMIT $4`, tenant, bucket, after, limit)
	if err != nil {
		return nil, db.fail(qctx, "scan", err)
	}
	return db.records(qctx, rows, "scan")
}

// Buckets implements cache.Backend.
func (db *DB) Buckets(ctx context.Context, tenant string) ([]string, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	rows, err := db.pool.Query(qctx, `SELECT DISTINCT bucket FROM ehgate_record WHERE tenant = $1 ORDER BY bucket`, tenant)
	if err != nil {
		return nil, db.fail(qctx, "buckets", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, db.fail(qctx, "buckets", err)
}

// records reads the key, value, t1, t2 rows of a record query; op names the operation in
// errors.
func (db *DB) records(qctx context.Context, rows pgx.Rows, op string) ([]cache.Record, error) {
	var out []cache.Record
	for rows.Next() {
		var r cache.Record
		if err := rows.Scan(&r.Key, &r.Value, &r.T1, &r.T2); err != nil {
			rows.Close()
			return nil, db.fail(qctx, op, err)
		}
		out = append(out, r)
	}
	return out, db.fail(qctx, op, rows.Err())
}
