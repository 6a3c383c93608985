package cache_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ehgate/ehgate/cache"
)

// The review's findings (LOW 7): a store directory with mode 0755 was used
// silently, and a dangling symlink as the store file was followed.
func TestOpen_WideAccessWarnsOrRefuses(t *testing.T) {
	for _, tc := range []struct {
		name            string
		dirMode, fileMo os.FileMode // fileMo 0 = no file yet
	}{
		{"directory 0755", 0o755, 0},
		{"file 0644", 0o700, 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			require.NoError(t, os.Mkdir(dir, 0o700))
			path := filepath.Join(dir, "pharmacy-1.db")
			if tc.fileMo != 0 {
				st, err := cache.Open(testConfig(dir))
				require.NoError(t, err)
				require.NoError(t, st.Close())
				require.NoError(t, os.Chmod(path, tc.fileMo))
			}
			require.NoError(t, os.Chmod(dir, tc.dirMode))
			wide := dir
			if tc.fileMo != 0 {
				wide = path
			}

			core, logs := observer.New(zapcore.WarnLevel)
			st, err := cache.Open(testConfig(dir), cache.WithLogger(zap.New(core)))
			require.NoError(t, err, "the default warns and opens")
			require.NoError(t, st.Close())
			w := logs.FilterMessage("cache: store path open to the group or others").All()
			require.Len(t, w, 1)
			require.Equal(t, wide, w[0].ContextMap()["path"])

			cfg := testConfig(dir)
			cfg.OnWideAccess = cache.AccessRefuse
			_, err = cache.Open(cfg)
			require.ErrorIs(t, err, cache.ErrUnsafePath)
			require.ErrorContains(t, err, wide)

			// Closed again: opens without a word.
			require.NoError(t, os.Chmod(dir, 0o700))
			if tc.fileMo != 0 {
				require.NoError(t, os.Chmod(path, 0o600))
			}
			core, logs = observer.New(zapcore.WarnLevel)
			st, err = cache.Open(cfg, cache.WithLogger(zap.New(core)))
			require.NoError(t, err)
			require.NoError(t, st.Close())
			require.Zero(t, logs.Len())
		})
	}
	cfg := testConfig(t.TempDir())
	cfg.OnWideAccess = 7
	require.Error(t, cfg.Validate())
}

func TestOpen_RefusesSymlinkedStoreFile(t *testing.T) {
	t.Run("dangling", func(t *testing.T) {
		dir, elsewhere := t.TempDir(), t.TempDir()
		target := filepath.Join(elsewhere, "planted.db")
		require.NoError(t, os.Symlink(target, filepath.Join(dir, "pharmacy-1.db")))
		_, err := cache.Open(testConfig(dir))
		require.ErrorIs(t, err, cache.ErrUnsafePath)
		_, err = os.Lstat(target)
		require.ErrorIs(t, err, os.ErrNotExist, "the link was not followed")
	})
	t.Run("to a real store", func(t *testing.T) {
		real, dir := t.TempDir(), t.TempDir()
		st, err := cache.Open(testConfig(real))
		require.NoError(t, err)
		require.NoError(t, st.Close())
		require.NoError(t, os.Symlink(filepath.Join(real, "pharmacy-1.db"), filepath.Join(dir, "pharmacy-1.db")))
		cfg := testConfig(dir)
		cfg.OnCorrupt = cache.CorruptStartFresh // not a damaged file: nothing is moved aside
		_, err = cache.Open(cfg)
		require.ErrorIs(t, err, cache.ErrUnsafePath)
		fi, err := os.Lstat(filepath.Join(dir, "pharmacy-1.db"))
		require.NoError(t, err)
		require.NotZero(t, fi.Mode()&os.ModeSymlink, "left in place")
	})
}
