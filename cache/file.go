package cache

import (
	"bytes"
	"context"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// fileBackend is the bbolt file as a RecordBackend: the default storage,
// used by one process at a time. Its writes go through the Store's group
// committer (one fsync for the writes that arrive together) and its reads
// through the Store's fault-catching read transactions; what only the file
// offers beyond the interface (the memory LRU, hooks run in commit order,
// batches in one transaction, the damaged-file recovery at Open) is reached
// through its own methods. The tenant argument is ignored: one file holds one
// tenant.
type fileBackend struct {
	s  *Store
	fq *fileQueue
}

var (
	_ RecordBackend = (*fileBackend)(nil)
	_ BatchBackend  = (*fileBackend)(nil)
	_ recordBatcher = (*fileBackend)(nil)
	_ queue         = (*fileBackend)(nil)
	_ requeuer      = (*fileBackend)(nil)
)

// recordBatcher is what a Backend may offer to apply many record writes in
// one transaction; the Store falls back to one call per record without it.
type recordBatcher interface {
	// putNewerBatch is PutNewer for each record; wrote[i] reports record i.
	putNewerBatch(ctx context.Context, recs []BucketRecord) (wrote []bool, err error)
	// swapBatch is Swap for each record (olds[i] is what record i replaces).
	swapBatch(ctx context.Context, bucket string, olds [][]byte, recs []Record) (int, error)
	// deleteRecordBatch is DeleteRecord for each record.
	deleteRecordBatch(ctx context.Context, bucket string, recs []Record) (int, error)
}

// headerTimes reads a record's clear-text times (0, 0 if its header does not parse).
func headerTimes(v []byte) (t1, t2 int64) {
	if h, _, _, _, err := parseHeader(v); err == nil {
		return h.t1, h.t2
	}
	return 0, 0
}

func (f *fileBackend) Get(_ context.Context, _, bucket string, key []byte) ([]byte, error) {
	var raw []byte
	err := f.s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			if v := b.Get(key); v != nil {
				raw = bytes.Clone(v)
			}
		}
		return nil
	})
	return raw, err
}

func putTx(tx *bolt.Tx, bucket string, r Record) error {
	b, err := tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return err
	}
	return b.Put(r.Key, r.Value)
}

func (f *fileBackend) Put(ctx context.Context, _, bucket string, r Record) error {
	return f.putAfter(ctx, bucket, r, nil)
}

// putAfter is Put, running after (if not nil) once committed, in commit order.
func (f *fileBackend) putAfter(ctx context.Context, bucket string, r Record, after func()) error {
	return f.s.write(ctx, func(tx *bolt.Tx) error { return putTx(tx, bucket, r) }, after)
}

// putNewerTx stores r unless the record it replaces has a later stored-at.
func putNewerTx(tx *bolt.Tx, bucket string, r Record) (bool, error) {
	b, err := tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return false, err
	}
	if old := b.Get(r.Key); old != nil {
		if h, _, _, _, err := parseHeader(old); err == nil && h.t1 > r.T1 {
			return false, nil
		}
	}
	return true, b.Put(r.Key, r.Value)
}

func (f *fileBackend) PutNewer(ctx context.Context, _, bucket string, r Record) (bool, error) {
	wrote := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		var err error
		wrote, err = putNewerTx(tx, bucket, r)
		return err
	}, nil)
	return wrote, err
}

func (f *fileBackend) putNewerBatch(ctx context.Context, recs []BucketRecord) ([]bool, error) {
	wrote := make([]bool, len(recs))
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		for i, r := range recs {
			var err error
			if wrote[i], err = putNewerTx(tx, r.Bucket, r.Record); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	return wrote, err
}

func (f *fileBackend) Create(ctx context.Context, _, bucket string, recs []Record) (bool, error) {
	created := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		created = false
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().First(); k != nil {
			return nil
		}
		for _, r := range recs {
			if err := b.Put(r.Key, r.Value); err != nil {
				return err
			}
		}
		created = true
		return nil
	}, nil)
	return created, err
}

func swapTx(tx *bolt.Tx, bucket string, old []byte, r Record) (bool, error) {
	b := tx.Bucket([]byte(bucket))
	if b == nil || !bytes.Equal(b.Get(r.Key), old) {
		return false, nil
	}
	return true, b.Put(r.Key, r.Value)
}

func (f *fileBackend) Swap(ctx context.Context, _, bucket string, old []byte, r Record) (bool, error) {
	n, err := f.swapBatch(ctx, bucket, [][]byte{old}, []Record{r})
	return n == 1, err
}

func (f *fileBackend) swapBatch(ctx context.Context, bucket string, olds [][]byte, recs []Record) (int, error) {
	n := 0
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		for i, r := range recs {
			ok, err := swapTx(tx, bucket, olds[i], r)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	}, nil)
	return n, err
}

func (f *fileBackend) Delete(ctx context.Context, _, bucket string, key []byte) (bool, error) {
	return f.deleteAfter(ctx, bucket, key, nil)
}

// deleteAfter is Delete, running after (if not nil) once committed, in commit order.
func (f *fileBackend) deleteAfter(ctx context.Context, bucket string, key []byte, after func()) (bool, error) {
	found := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		found = false
		if b := tx.Bucket([]byte(bucket)); b != nil && b.Get(key) != nil {
			found = true
			return b.Delete(key)
		}
		return nil
	}, after)
	return found, err
}

func (f *fileBackend) DeleteRecord(ctx context.Context, _, bucket string, key, value []byte) (bool, error) {
	n, err := f.deleteRecordBatch(ctx, bucket, []Record{{Key: key, Value: value}})
	return n == 1, err
}

func (f *fileBackend) deleteRecordBatch(ctx context.Context, bucket string, recs []Record) (int, error) {
	n := 0
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		for _, r := range recs {
			if v := b.Get(r.Key); v == nil || !bytes.Equal(v, r.Value) {
				continue
			}
			if err := b.Delete(r.Key); err != nil {
				return err
			}
			n++
		}
		return nil
	}, nil)
	return n, err
}

func (f *fileBackend) PutBatch(ctx context.Context, _ string, recs []BucketRecord) error {
	return f.s.write(ctx, func(tx *bolt.Tx) error {
		for _, r := range recs {
			if _, err := putNewerTx(tx, r.Bucket, r.Record); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// scan reads up to limit records of bucket after key after (all when nil)
// that keep returns true for, in one short read transaction, copying them
// out so that nothing holds the transaction open while the caller works.
func (f *fileBackend) scan(bucket string, after []byte, limit int, keep func(r Record) bool) ([]Record, error) {
	var out []Record
	err := f.s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			if v == nil {
				continue // a nested bucket; the store has none
			}
			t1, t2 := headerTimes(v)
			r := Record{Key: k, Value: v, T1: t1, T2: t2}
			if keep != nil && !keep(r) {
				continue
			}
			out = append(out, Record{Key: bytes.Clone(k), Value: bytes.Clone(v), T1: t1, T2: t2})
		}
		return nil
	})
	return out, err
}

func (f *fileBackend) Scan(_ context.Context, _, bucket string, after []byte, limit int) ([]Record, error) {
	return f.scan(bucket, after, limit, nil)
}

// Expired also returns the records whose clear-text header does not parse:
// the Store authenticates every candidate, so those are counted as tampered
// and kept, as a read would.
func (f *fileBackend) Expired(_ context.Context, _, bucket string, storedBefore, now int64, after []byte, limit int) ([]Record, error) {
	return f.scan(bucket, after, limit, func(r Record) bool {
		return r.T1 == 0 || r.T1 <= storedBefore || (r.T2 != 0 && r.T2 <= now)
	})
}

func (f *fileBackend) Buckets(context.Context, string) ([]string, error) {
	var out []string
	err := f.s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if k, _ := b.Cursor().First(); k != nil {
				out = append(out, string(name))
			}
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}
