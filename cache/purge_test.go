package cache_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/ehgate/ehgate/cache"
)

// The review's attack (LOW 6): the background purge decided on the clear-text
// header, so a record whose times were altered on disk was deleted without
// being counted as tampered.
func TestPurge_AlteredHeaderIsCountedNotDeleted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pharmacy-1.db")
	clock := newTestClock()
	st, err := cache.Open(testConfig(dir), cache.WithClock(clock.Now))
	require.NoError(t, err)
	for _, k := range []string{"patient-a", "patient-b", "patient-c"} {
		require.NoError(t, st.Put(bg, cache.FunctionInsurability, k, []byte("answer "+k)))
	}
	require.NoError(t, st.Close())

	bucket := []byte("a:" + cache.FunctionInsurability)
	editFile(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var keys [][]byte
		require.NoError(t, b.ForEach(func(k, _ []byte) error { keys = append(keys, bytes.Clone(k)); return nil }))
		require.Len(t, keys, 3)
		// Record 0: stored-at moved to 1970 (version, kind, key-id length, key id, then t1).
		v := bytes.Clone(b.Get(keys[0]))
		binary.BigEndian.PutUint64(v[3+int(v[2]):], 1)
		if err := b.Put(keys[0], v); err != nil {
			return err
		}
		// Record 1: NotAfter set to 1970 as well.
		v = bytes.Clone(b.Get(keys[1]))
		binary.BigEndian.PutUint64(v[3+int(v[2])+8:], 1)
		return b.Put(keys[1], v)
	})

	// Open purges once: the two altered records are met and counted there.
	st = openTest(t, testConfig(dir), cache.WithClock(clock.Now))
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, uint64(2), s.AuthFailures, "each altered record is counted")
	n, err := st.Purge(bg)
	require.NoError(t, err)
	require.Zero(t, n, "altered records are not deleted")
	s, err = st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, uint64(4), s.AuthFailures, "and counted by every purge that meets them")
	require.Equal(t, 3, s.Functions[cache.FunctionInsurability].Count, "kept as evidence")

	// Genuinely expired records are still purged; the altered ones stay and count again.
	clock.Advance(10 * 365 * 24 * time.Hour)
	n, err = st.Purge(bg)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	s, err = st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, uint64(6), s.AuthFailures)
	require.Equal(t, 2, s.Functions[cache.FunctionInsurability].Count)
}
