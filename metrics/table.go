package metrics

import (
	"sync"
	"sync/atomic"
)

// table is a map read without a lock: each insert replaces an immutable copy. Inserts are
// rare (once per label set) and bounded by max; reads, once per call, meet on no lock.
type table[K comparable, V any] struct {
	mu  sync.Mutex
	m   atomic.Pointer[map[K]V]
	max int
}

func newTable[K comparable, V any](max int) *table[K, V] {
	t := &table[K, V]{max: max}
	t.m.Store(&map[K]V{})
	return t
}

func (t *table[K, V]) get(k K) (V, bool) {
	v, ok := (*t.m.Load())[k]
	return v, ok
}

// add keeps v for k unless the table is full (the caller then resolves k again next time).
func (t *table[K, V]) add(k K, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if _, ok := old[k]; ok || len(old) >= t.max {
		return
	}
	m := make(map[K]V, len(old)+1)
	for key, val := range old {
		m[key] = val
	}
	m[k] = v
	t.m.Store(&m)
}
