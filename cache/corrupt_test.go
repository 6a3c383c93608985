package cache_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// populated writes a store with enough records to span many pages and
// returns its configuration and file path. The template is written by
// sequential Puts so its layout does not depend on how concurrent writes
// would have been batched into transactions.
func populated(t *testing.T) (cache.Config, string) {
	t.Helper()
	templateOnce.Do(func() {
		cfg := testConfig(t.TempDir())
		st, err := cache.Open(cfg)
		require.NoError(t, err)
		for g := range 10 {
			for i := range 15 {
				require.NoError(t, st.Put(bg, cache.FunctionInsurability, fmt.Sprintf("patient-%d-%02d", g, i), make([]byte, 700)))
			}
		}
		require.NoError(t, st.Outbox().Enqueue(bg, cache.Message{IdempotencyKey: "w", Payload: []byte("p")}))
		require.NoError(t, st.Close())
		path := filepath.Join(cfg.Dir, cfg.Tenant+".db")
		template, err = os.ReadFile(path)
		require.NoError(t, err)
		// bbolt's own view of the file: its page size and how far its pages
		// reach (the high-water mark). The file itself is usually longer:
		// bbolt grows it to its mmap size, a power of two, so a cut at half
		// the file can leave every page bbolt uses intact.
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
		require.NoError(t, err)
		templatePageSize = int64(db.Info().PageSize)
		require.NoError(t, db.View(func(tx *bolt.Tx) error {
			templateUsed = tx.Size()
			return nil
		}))
		require.NoError(t, db.Close())
	})
	require.NotEmpty(t, template)
	require.Greater(t, templateUsed, 8*templatePageSize, "template spans many pages")
	cfg := testConfig(t.TempDir())
	path := filepath.Join(cfg.Dir, cfg.Tenant+".db")
	require.NoError(t, os.WriteFile(path, template, 0o600))
	return cfg, path
}

var (
	templateOnce sync.Once
	template     []byte
	// templatePageSize and templateUsed are the template's page size and the
	// bytes its pages reach (bbolt's Tx.Size: high-water mark × page size).
	templatePageSize, templateUsed int64
)

func TestOpen_UnusableFiles(t *testing.T) {
	damage := map[string]struct {
		damage func(t *testing.T, path string, cfg *cache.Config)
		want   error
	}{
		"truncated to half": {func(t *testing.T, path string, _ *cache.Config) {
			// Half of the pages bbolt uses (not half the file, which may be
			// all slack past the high-water mark), on a page boundary: the
			// cut always removes live pages whatever the template's layout.
			size := templateUsed / 2 / templatePageSize * templatePageSize
			require.Greater(t, size, 2*templatePageSize, "the meta pages survive the cut")
			require.Less(t, size, templateUsed)
			require.NoError(t, os.Truncate(path, size))
		}, cache.ErrCorrupt},
		"truncated to nothing": {func(t *testing.T, path string, _ *cache.Config) {
			require.NoError(t, os.Truncate(path, 0))
		}, cache.ErrCorrupt},
		"truncated inside the meta pages": {func(t *testing.T, path string, _ *cache.Config) {
			require.NoError(t, os.Truncate(path, 100))
		}, cache.ErrCorrupt},
		"meta pages garbled": {func(t *testing.T, path string, _ *cache.Config) {
			garble(t, path, 0, 2*templatePageSize, 1) // both meta pages, whatever the page size
		}, cache.ErrCorrupt},
		"data pages garbled": {func(t *testing.T, path string, _ *cache.Config) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			garble(t, path, 2*templatePageSize, fi.Size()-2*templatePageSize, 2)
		}, cache.ErrCorrupt},
		"not a store at all": {func(t *testing.T, path string, _ *cache.Config) {
			require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("not a database\n", 2000)), 0o600))
		}, cache.ErrCorrupt},
		"encrypted under another key ID": {func(t *testing.T, path string, cfg *cache.Config) {
			cfg.Keys = []cache.Key{testKey("other", 1)}
		}, cache.ErrUnknownKey},
		"same key ID, other secret": {func(t *testing.T, path string, cfg *cache.Config) {
			cfg.Keys = []cache.Key{testKey("k1", 2)}
		}, cache.ErrUnknownKey},
	}
	for name, d := range damage {
		t.Run(name, func(t *testing.T) {
			for _, action := range []cache.CorruptAction{cache.CorruptFail, cache.CorruptMoveAside, cache.CorruptStartFresh} {
				t.Run(action.String(), func(t *testing.T) {
					cfg, path := populated(t)
					d.damage(t, path, &cfg)
					before, err := os.ReadFile(path)
					require.NoError(t, err)
					cfg.OnCorrupt = action

					st, err := cache.Open(cfg)
					if action != cache.CorruptStartFresh {
						require.ErrorIs(t, err, d.want)
						var fe *cache.FileError
						require.ErrorAs(t, err, &fe)
						require.Equal(t, path, fe.Path)
						if action == cache.CorruptFail {
							require.Empty(t, fe.MovedTo)
							after, err := os.ReadFile(path)
							require.NoError(t, err)
							require.Equal(t, before, after, "left in place, untouched")
							return
						}
						requireMovedAside(t, fe, before)
						require.NoFileExists(t, path)
						return
					}
					require.NoError(t, err)
					defer st.Close()
					fe := st.Recovered()
					require.NotNil(t, fe)
					require.ErrorIs(t, fe, d.want)
					requireMovedAside(t, fe, before)
					// A fresh, working store.
					_, err = st.Get(bg, cache.FunctionInsurability, "patient-0-01")
					require.ErrorIs(t, err, cache.ErrNotFound)
					require.NoError(t, st.Put(bg, cache.FunctionInsurability, "patient-0-01", []byte("new")))
					require.Equal(t, 0, st.Outbox().Pending())
				})
			}
		})
	}
}

func requireMovedAside(t *testing.T, fe *cache.FileError, before []byte) {
	t.Helper()
	require.NotEmpty(t, fe.MovedTo)
	require.True(t, strings.HasPrefix(filepath.Base(fe.MovedTo), filepath.Base(fe.Path)+".corrupt-"), fe.MovedTo)
	moved, err := os.ReadFile(fe.MovedTo)
	require.NoError(t, err)
	require.Equal(t, before, moved, "moved aside intact, never deleted")
}

// garble overwrites n bytes from off with pseudo-random bytes.
func garble(t *testing.T, path string, off, n int64, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	r := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	_, err = f.WriteAt(buf, off)
	require.NoError(t, err)
}
