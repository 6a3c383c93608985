package cache_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/stretchr/testify/require"
)

// The conformance suite on the default storage, the bbolt file (package
// pgstore runs it on PostgreSQL).
func TestConformance_File(t *testing.T) {
	dir := t.TempDir()
	cachetest.Run(t, cachetest.Harness{
		Open: func(t *testing.T, cfg cache.Config, opts ...cache.Option) (*cache.Store, error) {
			cfg.Dir = dir
			return cache.Open(cfg, opts...)
		},
		Raw: func(t *testing.T, tenant string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, tenant+".db"))
			require.NoError(t, err)
			return b
		},
	})
}
