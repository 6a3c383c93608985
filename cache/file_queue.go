package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The file's queue: the "outbox" bucket holds each queued record under its
// sequence number (8 bytes, big endian), sealed to that number; the
// "outbox-index" bucket maps the HMAC of each queued idempotency key to its
// sequence number. Partitions are not written in clear in the file: the Store
// reads them from the sealed records at Open and the file backend keeps them
// in memory (fileQueue), which it can since one process has the file.

// fileQueue is the file's queue index in memory. Records that failed
// authentication at Open are counted (pending, bytes) but in no partition:
// they are never delivered, and Replay reports them as skipped.
type fileQueue struct {
	mu     sync.Mutex
	meta   map[uint64]queuedMeta
	byPart map[string][]uint64 // ascending
	held   map[string]bool     // partitions a Replay holds
	bytes  int64
	bad    int
}

type queuedMeta struct {
	part string
	ik   []byte
	enq  int64
	size int
	bad  bool
}

func newFileQueue() *fileQueue {
	return &fileQueue{meta: map[uint64]queuedMeta{}, byPart: map[string][]uint64{}, held: map[string]bool{}}
}

func (q *fileQueue) add(seq uint64, m queuedMeta) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.meta[seq]; ok {
		return
	}
	q.meta[seq] = m
	q.bytes += int64(m.size)
	if m.bad {
		q.bad++
		return
	}
	s := q.byPart[m.part]
	i, _ := slices.BinarySearch(s, seq)
	q.byPart[m.part] = slices.Insert(s, i, seq)
}

func (q *fileQueue) remove(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.meta[seq]
	if !ok {
		return
	}
	delete(q.meta, seq)
	q.bytes -= int64(m.size)
	if m.bad {
		q.bad--
		return
	}
	s := q.byPart[m.part]
	if i, found := slices.BinarySearch(s, seq); found {
		s = slices.Delete(s, i, i+1)
	}
	if len(s) == 0 {
		delete(q.byPart, m.part)
	} else {
		q.byPart[m.part] = s
	}
}

func (q *fileQueue) get(seq uint64) (queuedMeta, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, ok := q.meta[seq]
	return m, ok
}

// unreadable counts the queued records that failed authentication at Open.
func (q *fileQueue) unreadable() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bad
}

func (q *fileQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.meta)
}

func (f *fileBackend) append(ctx context.Context, ds []draft) ([]uint64, error) {
	seqs := make([]uint64, len(ds))
	sizes := make([]int, len(ds))
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		clear(seqs) // the committer may run this again alone after a failed batch
		idx, err := tx.CreateBucketIfNotExists(bucketOutboxIndex)
		if err != nil {
			return err
		}
		b, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		for i, d := range ds {
			if idx.Get(d.ik) != nil {
				continue
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			k := seqKey(seq)
			v := d.seal(k)
			if err := b.Put(k, v); err != nil {
				return err
			}
			if err := idx.Put(d.ik, k); err != nil {
				return err
			}
			seqs[i], sizes[i] = seq, len(v)
		}
		return nil
	}, func() {
		for i, d := range ds {
			if seqs[i] != 0 {
				f.fq.add(seqs[i], queuedMeta{part: string(d.part), ik: d.ik, enq: d.enq, size: sizes[i]})
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

func (*fileBackend) aad(q Queued) []byte { return seqKey(q.Seq) }

func (f *fileBackend) entries(_ context.Context, part []byte, after uint64, limit int) ([]Queued, error) {
	var seqs []uint64
	if part != nil {
		f.fq.mu.Lock()
		s := f.fq.byPart[string(part)]
		i, _ := slices.BinarySearch(s, after+1)
		seqs = slices.Clone(s[i:min(len(s), i+limit)])
		f.fq.mu.Unlock()
	}
	var out []Queued
	err := f.s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		if part == nil {
			// Every record on disk, in sequence order, readable or not.
			c := b.Cursor()
			for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
				if len(k) != 8 || v == nil {
					continue
				}
				out = append(out, f.queued(binary.BigEndian.Uint64(k), v))
			}
			return nil
		}
		for _, seq := range seqs {
			if v := b.Get(seqKey(seq)); v != nil {
				out = append(out, f.queued(seq, v))
			}
		}
		return nil
	})
	return out, err
}

// queued copies a record out of a read transaction, with what the index knows of it.
func (f *fileBackend) queued(seq uint64, v []byte) Queued {
	q := Queued{Seq: seq, Value: bytes.Clone(v)}
	if m, ok := f.fq.get(seq); ok {
		q.Partition, q.IdempotencyKey, q.EnqueuedAt = []byte(m.part), m.ik, m.enq
	}
	return q
}

func (f *fileBackend) stats(context.Context) (int, int64, int64, error) {
	f.fq.mu.Lock()
	defer f.fq.mu.Unlock()
	var oldest int64
	var first uint64
	for seq, m := range f.fq.meta {
		if first == 0 || seq < first {
			first, oldest = seq, m.enq
		}
	}
	return len(f.fq.meta), oldest, f.fq.bytes, nil
}

// claim gives the partitions no Replay holds, oldest head first. One
// process has the file, so a lease is a mark in memory and never expires.
func (f *fileBackend) claim(_ context.Context, _ string, _ time.Duration, max int) ([][]byte, error) {
	f.fq.mu.Lock()
	defer f.fq.mu.Unlock()
	type cand struct {
		part string
		head uint64
	}
	var cs []cand
	for p, s := range f.fq.byPart {
		if len(s) > 0 && !f.fq.held[p] {
			cs = append(cs, cand{p, s[0]})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmpUint(a.head, b.head) })
	var out [][]byte
	for _, c := range cs[:min(len(cs), max)] {
		f.fq.held[c.part] = true
		out = append(out, []byte(c.part))
	}
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fileBackend) renew(_ context.Context, _ string, part []byte, _ time.Duration) (bool, error) {
	f.fq.mu.Lock()
	defer f.fq.mu.Unlock()
	return f.fq.held[string(part)], nil
}

func (f *fileBackend) release(_ context.Context, _ string, part []byte) error {
	f.fq.mu.Lock()
	defer f.fq.mu.Unlock()
	delete(f.fq.held, string(part))
	return nil
}

func (f *fileBackend) dequeue(ctx context.Context, seq uint64, dead *Record) (bool, error) {
	k := seqKey(seq)
	m, known := f.fq.get(seq)
	removed := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		removed = false
		b := tx.Bucket(bucketOutbox)
		if b == nil || b.Get(k) == nil {
			return nil
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		removed = true
		if idx := tx.Bucket(bucketOutboxIndex); idx != nil && known && m.ik != nil {
			if bytes.Equal(idx.Get(m.ik), k) {
				if err := idx.Delete(m.ik); err != nil {
					return err
				}
			}
		}
		if dead == nil {
			return nil
		}
		d, err := tx.CreateBucketIfNotExists(bucketDead)
		if err != nil {
			return err
		}
		return d.Put(dead.Key, dead.Value)
	}, func() {
		if removed {
			f.fq.remove(seq)
			if dead != nil {
				f.s.outbox.dead.Add(1)
			}
		}
	})
	return removed, err
}

func (f *fileBackend) swap(ctx context.Context, seq uint64, old, value []byte) (bool, error) {
	k := seqKey(seq)
	ok := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		ok = false
		b := tx.Bucket(bucketOutbox)
		if b == nil || !bytes.Equal(b.Get(k), old) {
			return nil
		}
		ok = true
		return b.Put(k, value)
	}, func() {
		if ok {
			f.fq.mu.Lock()
			if m, found := f.fq.meta[seq]; found {
				f.fq.bytes += int64(len(value) - m.size)
				m.size = len(value)
				f.fq.meta[seq] = m
			}
			f.fq.mu.Unlock()
		}
	})
	return ok, err
}

func (f *fileBackend) nextSeq(ctx context.Context) (uint64, error) {
	var seq uint64
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		seq, err = b.NextSequence()
		return err
	}, nil)
	return seq, err
}

// loadQueue reads the file's queue into memory at Open: each record is
// authenticated once to learn its partition and idempotency key; one that
// fails is counted (Stats.AuthFailures, logged) and kept as evidence, never
// delivered.
func (f *fileBackend) loadQueue() error {
	s := f.s
	ix := s.index
	return s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDead); b != nil {
			s.outbox.dead.Store(int64(b.Stats().KeyN))
		}
		b := tx.Bucket(bucketOutbox)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || v == nil {
				return nil
			}
			seq := binary.BigEndian.Uint64(k)
			m, err := s.outbox.openMessage(k, v)
			if err != nil {
				t1, _ := headerTimes(v)
				f.fq.add(seq, queuedMeta{enq: t1, size: len(v), bad: true})
				return nil
			}
			f.fq.add(seq, queuedMeta{part: string(ix.sum("partition", m.Partition)), ik: ix.sum("outbox", m.IdempotencyKey),
				enq: m.EnqueuedAt.UnixNano(), size: len(v)})
			return nil
		})
	})
}

// requeue removes dead letter deadKey and appends d in one transaction.
func (f *fileBackend) requeue(ctx context.Context, deadKey []byte, d draft) (uint64, bool, error) {
	var seq uint64
	var size int
	removed := false
	err := f.s.write(ctx, func(tx *bolt.Tx) error {
		seq, removed = 0, false
		db := tx.Bucket(bucketDead)
		if db == nil || db.Get(deadKey) == nil {
			return nil
		}
		if err := db.Delete(deadKey); err != nil {
			return err
		}
		removed = true
		idx, err := tx.CreateBucketIfNotExists(bucketOutboxIndex)
		if err != nil {
			return err
		}
		if idx.Get(d.ik) != nil {
			return nil
		}
		b, err := tx.CreateBucketIfNotExists(bucketOutbox)
		if err != nil {
			return err
		}
		if seq, err = b.NextSequence(); err != nil {
			return err
		}
		k := seqKey(seq)
		v := d.seal(k)
		size = len(v)
		if err := b.Put(k, v); err != nil {
			return err
		}
		return idx.Put(d.ik, k)
	}, func() {
		if seq != 0 {
			f.fq.add(seq, queuedMeta{part: string(d.part), ik: d.ik, enq: d.enq, size: size})
		}
	})
	if err != nil {
		return 0, false, err
	}
	return seq, removed, nil
}
