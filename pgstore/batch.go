package pgstore

import (
	"context"

	"github.com/ehgate/ehgate/cache"
)

var _ cache.BatchBackend = (*DB)(nil)

// PutBatch implements cache.BatchBackend: the records (of several buckets of
// one tenant; each replaces a record with an earlier or equal T1, never a
// later one) go in with one statement, one implicit transaction and one
// commit. The Store writes its deferred answers with it.
func (db *DB) PutBatch(ctx context.Context, tenant string, recs []cache.BucketRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := db.ready(ctx); err != nil {
		return err
	}
	buckets := make([]string, len(recs))
	keys, values := make([][]byte, len(recs)), make([][]byte, len(recs))
	t1s, t2s := make([]int64, len(recs)), make([]int64, len(recs))
	for i, r := range recs {
		buckets[i], keys[i], values[i], t1s[i], t2s[i] = r.Bucket, r.Key, r.Value, r.T1, r.T2
	}
	qctx, cancel := db.query(ctx)
	defer cancel()
	_, err := db.pool.Exec(qctx, `INSERT INTO ehgate_record (tenant, bucket, key, value, t1, t2)
		SELECT $1, b, k, v, x1, x2 FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[]) AS x(b, k, v, x1, x2)
		ON CONFLICT (tenant, bucket, key) DO UPDATE SET value = EXCLUDED.value, t1 = EXCLUDED.t1, t2 = EXCLUDED.t2
		WHERE ehgate_record.t1 <= EXCLUDED.t1`,
		tenant, buckets, keys, values, t1s, t2s)
	return db.fail(qctx, "put batch", err)
}
