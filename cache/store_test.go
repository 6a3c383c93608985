package cache_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

const ssin = "85073003328"

func TestStore_PutGetFromMemoryAndFromDisk(t *testing.T) {
	dir := t.TempDir()
	clk := newTestClock()
	st, err := cache.Open(testConfig(dir), cache.WithClock(clk.Now))
	require.NoError(t, err)
	answer := []byte(`<InsurabilityResponse>regime=elevated</InsurabilityResponse>`)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, answer))
	clk.Advance(10 * time.Minute)

	e, err := st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, answer, e.Value)
	require.Equal(t, 10*time.Minute, e.Age)
	require.True(t, e.Fresh)
	require.Equal(t, clk.Now().Add(-10*time.Minute), e.StoredAt.UTC())
	require.NoError(t, st.Close())

	st = openTest(t, testConfig(dir), cache.WithClock(clk.Now))
	e, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, answer, e.Value)
	require.Equal(t, 10*time.Minute, e.Age)

	_, err = st.Get(bg, cache.FunctionInsurability, "00000000000")
	require.ErrorIs(t, err, cache.ErrNotFound)
	_, err = st.Get(bg, "nope", ssin)
	require.ErrorIs(t, err, cache.ErrUnknownFunction)

	require.NoError(t, st.Delete(bg, cache.FunctionInsurability, ssin))
	_, err = st.Get(bg, cache.FunctionInsurability, ssin)
	require.ErrorIs(t, err, cache.ErrNotFound)
}

func TestStore_FreshThenStaleThenExpired(t *testing.T) {
	clk := newTestClock()
	cfg := testConfig(t.TempDir())
	cfg.Functions = map[string]cache.Policy{
		"prescriptions": {Fresh: time.Hour, ServeStale: 24 * time.Hour, Retention: 48 * time.Hour},
	}
	st := openTest(t, cfg, cache.WithClock(clk.Now))
	require.NoError(t, st.Put(bg, "prescriptions", "rx-1", []byte("v")))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, []byte("ins")))

	cases := []struct {
		at        time.Duration
		fresh     bool
		expired   bool
		insurable bool // insurability: served up to 30 days by default
	}{
		{at: 59 * time.Minute, fresh: true, insurable: true},
		{at: 61 * time.Minute, fresh: false, insurable: true},
		{at: 23 * time.Hour, fresh: false, insurable: true},
		{at: 24 * time.Hour, expired: true, insurable: true},
		{at: 30*24*time.Hour - time.Second, expired: true, insurable: true},
		{at: 30 * 24 * time.Hour, expired: true, insurable: false},
	}
	start := clk.Now()
	for _, c := range cases {
		t.Run(c.at.String(), func(t *testing.T) {
			clk.Advance(start.Add(c.at).Sub(clk.Now()))
			e, err := st.Get(bg, "prescriptions", "rx-1")
			if c.expired {
				require.ErrorIs(t, err, cache.ErrExpired)
				var ee *cache.ExpiredError
				require.ErrorAs(t, err, &ee)
				require.Equal(t, c.at, ee.Age)
				require.False(t, ee.NotAfter)
				require.NotContains(t, err.Error(), "rx-1")
			} else {
				require.NoError(t, err)
				require.Equal(t, c.fresh, e.Fresh)
				require.Equal(t, start.Add(24*time.Hour), e.Until.UTC())
			}
			_, err = st.Get(bg, cache.FunctionInsurability, ssin)
			if c.insurable {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, cache.ErrExpired)
			}
		})
	}
}

func TestStore_NotAfterEndsServingBeforePolicy(t *testing.T) {
	clk := newTestClock()
	st := openTest(t, testConfig(t.TempDir()), cache.WithClock(clk.Now))
	certEnd := clk.Now().Add(2 * time.Hour)
	require.NoError(t, st.Put(bg, cache.FunctionETK, "NIHII-PHARMACY=12345678", []byte("etk"), cache.NotAfter(certEnd)))

	clk.Advance(time.Hour)
	e, err := st.Get(bg, cache.FunctionETK, "NIHII-PHARMACY=12345678")
	require.NoError(t, err)
	require.Equal(t, certEnd, e.NotAfter.UTC())
	require.Equal(t, certEnd, e.Until.UTC())

	clk.Advance(time.Hour)
	_, err = st.Get(bg, cache.FunctionETK, "NIHII-PHARMACY=12345678")
	var ee *cache.ExpiredError
	require.ErrorAs(t, err, &ee)
	require.True(t, ee.NotAfter)

	// An answer already past its NotAfter is not stored.
	err = st.Put(bg, cache.FunctionETK, "CBE=0123456789", []byte("etk"), cache.NotAfter(clk.Now()))
	require.ErrorIs(t, err, cache.ErrExpired)
}

func TestStore_PurgeAfterRetentionAndAtOpen(t *testing.T) {
	dir := t.TempDir()
	clk := newTestClock()
	cfg := testConfig(dir)
	cfg.Functions = map[string]cache.Policy{"short": {Fresh: time.Minute, ServeStale: time.Hour, Retention: 2 * time.Hour}}
	st, err := cache.Open(cfg, cache.WithClock(clk.Now))
	require.NoError(t, err)
	require.NoError(t, st.Put(bg, "short", "old", []byte("1")))
	clk.Advance(90 * time.Minute)
	require.NoError(t, st.Put(bg, "short", "young", []byte("2")))
	require.NoError(t, st.Put(bg, cache.FunctionETK, "e", []byte("3"), cache.NotAfter(clk.Now().Add(time.Minute))))

	n, err := st.Purge(bg)
	require.NoError(t, err)
	require.Equal(t, 0, n, "nothing has reached its retention yet")
	_, err = st.Get(bg, "short", "old")
	require.ErrorIs(t, err, cache.ErrExpired, "past ServeStale but kept until Retention")

	clk.Advance(31 * time.Minute) // old: 121 min; etk past NotAfter
	n, err = st.Purge(bg)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = st.Get(bg, "short", "old")
	require.ErrorIs(t, err, cache.ErrNotFound)
	stats, err := st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, 1, stats.Functions["short"].Count)
	require.Equal(t, 0, stats.Functions[cache.FunctionETK].Count)
	require.NoError(t, st.Close())

	// At Open: "young" has passed its retention while the store was closed.
	clk.Advance(2 * time.Hour)
	st = openTest(t, cfg, cache.WithClock(clk.Now))
	stats, err = st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, 0, stats.Functions["short"].Count)
}

func TestStore_FileHoldsNoPlaintextNorSSIN(t *testing.T) {
	dir := t.TempDir()
	st, err := cache.Open(testConfig(dir))
	require.NoError(t, err)
	secret := []byte("PLAINTEXT-INSURABILITY-ANSWER-regime-elevated")
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, ssin, secret))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{
		IdempotencyKey: "ref-" + ssin, Partition: ssin, Service: "mycarenettarification:v1",
		Payload: []byte("PLAINTEXT-TARIFICATION-" + ssin),
	}))
	require.NoError(t, st.Close())

	raw, err := os.ReadFile(filepath.Join(dir, "pharmacy-1.db"))
	require.NoError(t, err)
	for _, needle := range []string{ssin, string(secret), "PLAINTEXT", "ref-"} {
		require.False(t, bytes.Contains(raw, []byte(needle)), "file contains %q", needle)
	}
	// The check would catch it: an unencrypted control record is visible.
	require.True(t, bytes.Contains(raw, []byte("ehgate-cache/1")))
}

func TestStore_KeyRotationAndRekey(t *testing.T) {
	dir := t.TempDir()
	old, cur := testKey("2025", 7), testKey("2026", 9)
	cfg := testConfig(dir)
	cfg.Keys = []cache.Key{old}
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "a", []byte("under old")))
	require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w1", Payload: []byte("p")}))
	require.NoError(t, st.Close())

	// Rotation: the new key first, the old one still listed.
	cfg.Keys = []cache.Key{cur, old}
	st, err = cache.Open(cfg)
	require.NoError(t, err)
	e, err := st.Get(bg, cache.FunctionInsurability, "a")
	require.NoError(t, err)
	require.Equal(t, "under old", string(e.Value))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "b", []byte("under new")))
	require.NoError(t, st.Close())
	require.Equal(t, map[string]int{"2025": 2, "2026": 1}, keyIDsInFile(t, filepath.Join(dir, "pharmacy-1.db")))

	// Without the old key the new record is readable, the old one is not.
	cfg.Keys = []cache.Key{cur}
	st, err = cache.Open(cfg)
	require.NoError(t, err)
	_, err = st.Get(bg, cache.FunctionInsurability, "b")
	require.NoError(t, err)
	_, err = st.Get(bg, cache.FunctionInsurability, "a")
	require.ErrorIs(t, err, cache.ErrNotFound)
	require.ErrorIs(t, err, cache.ErrTampered)
	require.NoError(t, st.Close())

	// Rekey with both keys, then the old key can go.
	cfg.Keys = []cache.Key{cur, old}
	st, err = cache.Open(cfg)
	require.NoError(t, err)
	n, err := st.Rekey(bg)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, st.Close())
	require.Equal(t, map[string]int{"2026": 3}, keyIDsInFile(t, filepath.Join(dir, "pharmacy-1.db")))

	cfg.Keys = []cache.Key{cur}
	st = openTest(t, cfg)
	e, err = st.Get(bg, cache.FunctionInsurability, "a")
	require.NoError(t, err)
	require.Equal(t, "under old", string(e.Value))
	require.Equal(t, 1, st.Outbox().Pending())

	// The old key alone is now unknown to the file.
	require.NoError(t, st.Close())
	cfg.Keys = []cache.Key{old}
	_, err = cache.Open(cfg)
	require.ErrorIs(t, err, cache.ErrUnknownKey)
}

// keyIDsInFile counts the data records (answers and outbox) per key ID, read
// from the clear-text record headers.
func keyIDsInFile(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	ids := map[string]int{}
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if !strings.HasPrefix(string(name), "a:") && string(name) != "outbox" {
				return nil
			}
			return b.ForEach(func(_, v []byte) error {
				ids[string(v[3:3+int(v[2])])]++
				return nil
			})
		})
	}))
	return ids
}

// editFile changes the store file directly through bbolt.
func editFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(fn))
	require.NoError(t, db.Close())
}

func TestStore_TamperedRecordsAreSkippedNotReturned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pharmacy-1.db")
	st, err := cache.Open(testConfig(dir))
	require.NoError(t, err)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "patient-a", []byte("answer A: not insured")))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "patient-b", []byte("answer B: insured")))
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "patient-c", []byte("answer C")))
	require.NoError(t, st.Close())

	bucket := []byte("a:" + cache.FunctionInsurability)
	var keys [][]byte
	editFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
	})
	require.Len(t, keys, 3)

	t.Run("flipped byte", func(t *testing.T) {
		editFile(t, path, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			v := bytes.Clone(b.Get(keys[0]))
			v[len(v)-20] ^= 0x01
			return b.Put(keys[0], v)
		})
	})
	t.Run("swapped values", func(t *testing.T) {
		editFile(t, path, func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			v1, v2 := bytes.Clone(b.Get(keys[1])), bytes.Clone(b.Get(keys[2]))
			if err := b.Put(keys[1], v2); err != nil {
				return err
			}
			return b.Put(keys[2], v1)
		})
	})

	st = openTest(t, testConfig(dir))
	for _, k := range []string{"patient-a", "patient-b", "patient-c"} {
		_, err := st.Get(bg, cache.FunctionInsurability, k)
		require.ErrorIs(t, err, cache.ErrNotFound, k)
		require.ErrorIs(t, err, cache.ErrTampered, k)
		require.NotContains(t, err.Error(), k)
	}
	stats, err := st.Stats(bg)
	require.NoError(t, err)
	require.Equal(t, uint64(3), stats.AuthFailures)

	// A fresh Put replaces a tampered record.
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "patient-a", []byte("again")))
	e, err := st.Get(bg, cache.FunctionInsurability, "patient-a")
	require.NoError(t, err)
	require.Equal(t, "again", string(e.Value))
}

func TestStore_RejectsBadArguments(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxValueBytes = 1000
	st := openTest(t, cfg)
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, "", []byte("v")), cache.ErrInvalid)
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, strings.Repeat("k", cache.MaxKeyBytes+1), nil), cache.ErrTooLarge)
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, "k", make([]byte, 1001)), cache.ErrTooLarge)
	require.ErrorIs(t, st.Put(bg, "unregistered", "k", nil), cache.ErrUnknownFunction)
	require.ErrorIs(t, st.Outbox().Enqueue(bg, cache.Message{}), cache.ErrInvalid)
	require.ErrorIs(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "x", Payload: make([]byte, 1001)}), cache.ErrTooLarge)
	require.NoError(t, st.Put(bg, cache.FunctionInsurability, "empty", nil))
	e, err := st.Get(bg, cache.FunctionInsurability, "empty")
	require.NoError(t, err)
	require.Empty(t, e.Value)
	require.NoError(t, st.Close())
	require.ErrorIs(t, st.Put(bg, cache.FunctionInsurability, "k", nil), cache.ErrClosed)
	_, err = st.Get(bg, cache.FunctionInsurability, "empty")
	require.ErrorIs(t, err, cache.ErrClosed)
}

func TestConfig_ValidateNamesTheField(t *testing.T) {
	base := testConfig("/tmp/x")
	cases := map[string]func(c *cache.Config){
		"Config.Dir":            func(c *cache.Config) { c.Dir = "" },
		"Config.Keys is empty":  func(c *cache.Config) { c.Keys = nil },
		"Config.Keys[0].Secret": func(c *cache.Config) { c.Keys[0].Secret = []byte("short") },
		"Config.Keys[1].ID":     func(c *cache.Config) { c.Keys = append(c.Keys, cache.Key{ID: "", Secret: make([]byte, 32)}) },
		"listed twice":          func(c *cache.Config) { c.Keys = append(c.Keys, c.Keys[0]) },
		"Config.Tenant":         func(c *cache.Config) { c.Tenant = "../etc" },
		`Functions["x"].ServeStale`: func(c *cache.Config) {
			c.Functions = map[string]cache.Policy{"x": {Fresh: time.Hour, ServeStale: time.Minute}}
		},
		`Functions["x"].Retention`: func(c *cache.Config) {
			c.Functions = map[string]cache.Policy{"x": {Fresh: time.Hour, ServeStale: 2 * time.Hour, Retention: time.Hour}}
		},
		`Functions["x"] would serve nothing`: func(c *cache.Config) { c.Functions = map[string]cache.Policy{"x": {}} },
		"Config.MaxValueBytes":               func(c *cache.Config) { c.MaxValueBytes = cache.LimitMaxValueBytes + 1 },
		"Config.OnCorrupt":                   func(c *cache.Config) { c.OnCorrupt = 7 },
	}
	for want, mutate := range cases {
		t.Run(want, func(t *testing.T) {
			c := base
			c.Keys = append([]cache.Key(nil), base.Keys...)
			mutate(&c)
			err := c.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), want)
			_, err = cache.Open(c)
			require.Error(t, err)
		})
	}
	require.NoError(t, base.Validate())
}

func TestOpen_LockedByAnotherHandle(t *testing.T) {
	cfg := testConfig(t.TempDir())
	openTest(t, cfg)
	cfg.LockTimeout = 20 * time.Millisecond
	_, err := cache.Open(cfg)
	require.ErrorIs(t, err, cache.ErrLocked)
	var fe *cache.FileError
	require.False(t, errors.As(err, &fe), "a locked file is not a corrupt one")
}

func ExampleStore() {
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	ctx := bg
	st, err := cache.Open(cache.Config{
		Dir:  dir,
		Keys: []cache.Key{{ID: "2026-11", Secret: bytes.Repeat([]byte{0x42}, 32)}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	_ = st.Put(ctx, cache.FunctionInsurability, "85073003328", []byte("<InsurabilityResponse/>"))
	e, err := st.Get(ctx, cache.FunctionInsurability, "85073003328")
	fmt.Println(string(e.Value), e.Fresh, err)

	_, err = st.Get(ctx, cache.FunctionInsurability, "00010100123")
	fmt.Println(errors.Is(err, cache.ErrNotFound))
	// Output:
	// <InsurabilityResponse/> true <nil>
	// true
}

func TestStore_RekeyRewritesEveryChunk(t *testing.T) {
	dir := t.TempDir()
	old, cur := testKey("old", 3), testKey("new", 4)
	cfg := testConfig(dir)
	cfg.Keys = []cache.Key{old}
	st, err := cache.Open(cfg)
	require.NoError(t, err)
	var lines strings.Builder
	lines.WriteString(`{"type":"header","format":"ehgate-cache-export","version":1}` + "\n")
	for i := range 1234 {
		fmt.Fprintf(&lines, `{"type":"answer","function":"etk","key":"id-%d","value":"dg==","stored_at":"%s"}`+"\n", i, time.Now().UTC().Format(time.RFC3339))
	}
	lines.WriteString(`{"type":"end"}` + "\n")
	_, err = st.Import(bg, strings.NewReader(lines.String()))
	require.NoError(t, err)
	require.NoError(t, st.Close())

	cfg.Keys = []cache.Key{cur, old}
	st, err = cache.Open(cfg)
	require.NoError(t, err)
	n, err := st.Rekey(bg)
	require.NoError(t, err)
	require.Equal(t, 1234, n)
	n, err = st.Rekey(bg)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left under the old key")
	require.NoError(t, st.Close())
	require.Equal(t, map[string]int{"new": 1234}, keyIDsInFile(t, filepath.Join(dir, "pharmacy-1.db")))

	cfg.Keys = []cache.Key{cur}
	st = openTest(t, cfg)
	for _, i := range []int{0, 499, 500, 999, 1000, 1233} {
		e, err := st.Get(bg, cache.FunctionETK, fmt.Sprintf("id-%d", i))
		require.NoError(t, err)
		require.Equal(t, "v", string(e.Value))
	}
}
