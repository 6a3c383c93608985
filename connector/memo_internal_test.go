package connector

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The memo keeps at most its size (a full shard drops one entry per new key, none when a key
// is replaced), remove and clear drop entries, and readers on other goroutines see each
// entry whole while writers replace shards (race detector).
func TestMemo_BoundedReplacedRemovedAndReadWhileWritten(t *testing.T) {
	const size = 4 * memoShards
	m := newMemo(size, 0)
	count := func() int {
		n := 0
		for i := range m.shards {
			n += len(*m.shards[i].m.Load())
		}
		return n
	}
	key := func(i int) memoKey { return memoKey{functionInsurability, fmt.Sprintf("%011d", i)} }
	for i := range 10 * size {
		m.add(key(i), memoEntry{value: i})
		require.LessOrEqual(t, count(), size)
	}
	last := key(10*size - 1)
	e, ok := m.get(last)
	require.True(t, ok, "the newest entry is kept")
	require.Equal(t, 10*size-1, e.value)

	full := count()
	m.add(last, memoEntry{value: "replaced"})
	require.Equal(t, full, count(), "replacing drops nothing")
	e, _ = m.get(last)
	require.Equal(t, "replaced", e.value)
	m.remove(last)
	_, ok = m.get(last)
	require.False(t, ok)
	require.Equal(t, full-1, count())
	m.clear()
	require.Zero(t, count())

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := key(i % 300)
				if g%2 == 0 {
					m.add(k, memoEntry{value: i})
				} else if e, ok := m.get(k); ok {
					if _, isInt := e.value.(int); !isInt {
						t.Errorf("entry read half written: %v", e.value)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, count(), size)
}
