package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.uber.org/zap"
)

// RenewalLease is how long a renewal lock taken by LockRenewal lasts if its
// holder never releases it (the process died during its token request): the
// other instances wait at most that long for it, or until their own request
// timeout, after which they ask the STS anyway (availability first).
const RenewalLease = 2 * time.Minute

// renewalPoll is how often a waiting LockRenewal tries the lock again.
const renewalPoll = 50 * time.Millisecond

// renewalTenant is the lease rows' tenant for renewal locks: no cache tenant
// can have this name (cache tenants are never empty).
const renewalTenant = ""

// LockRenewal implements sts.RenewalLock with a lease row (the table the
// outbox's partition leases use), taken with the same atomic INSERT … ON
// CONFLICT DO UPDATE … WHERE expired. A waiting instance holds no connection:
// it tries again every 50 ms until ctx ends. The row is keyed by a digest of
// the identity label (which carries no personal data anyway); a holder that
// dies leaves it to expire after RenewalLease.
func (db *DB) LockRenewal(ctx context.Context, identity string) (func(), error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte("ehgate sts renewal\x00" + identity))
	part := sum[:]
	var id [8]byte
	_, _ = rand.Read(id[:])
	owner := "sts/" + hex.EncodeToString(id[:])
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		ok, err := db.tryLease(ctx, renewalTenant, owner, part, RenewalLease)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				rctx, cancel := context.WithTimeout(context.Background(), db.cfg.QueryTimeout)
				defer cancel()
				if err := db.Release(rctx, renewalTenant, owner, part); err != nil {
					db.log.Warn("pgstore: renewal lock not released; it expires by itself", zap.Error(err))
				}
			}, nil
		}
		t.Reset(renewalPoll)
	}
}

// tryLease takes the lease on (tenant, part) for owner if nobody holds an
// unexpired one.
func (db *DB) tryLease(ctx context.Context, tenant, owner string, part []byte, lease time.Duration) (bool, error) {
	qctx, cancel := db.query(ctx)
	defer cancel()
	tag, err := db.pool.Exec(qctx, `INSERT INTO ehgate_lease (tenant, part, owner, until)
		VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')
		ON CONFLICT (tenant, part) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
			WHERE ehgate_lease.until <= now()`, tenant, part, owner, lease.Microseconds())
	if err != nil {
		return false, db.fail(qctx, "renewal lock", err)
	}
	return tag.RowsAffected() == 1, nil
}
