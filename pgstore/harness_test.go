package pgstore_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/ehgate/ehgate/cache"
	"github.com/ehgate/ehgate/cache/cachetest"
	"github.com/ehgate/ehgate/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// testURL returns the test database's connection string, or skips the test.
// CI starts a throwaway PostgreSQL cluster and sets EHGATE_TEST_POSTGRES_URL.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("EHGATE_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("EHGATE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
	}
	return u
}

func openDB(t testing.TB, mod ...func(*pgstore.Config)) *pgstore.DB {
	t.Helper()
	cfg := pgstore.Config{URL: testURL(t)}
	for _, m := range mod {
		m(&cfg)
	}
	db, err := pgstore.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return db
}

// rawTenant returns every byte the database holds for tenant.
func rawTenant(t *testing.T, tenant string) []byte {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testURL(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var out bytes.Buffer
	rows, err := conn.Query(context.Background(), `SELECT bucket::bytea, key, value FROM ehgate_record WHERE tenant = $1
		UNION ALL SELECT part, idem, value FROM ehgate_queue WHERE tenant = $1`, tenant)
	require.NoError(t, err)
	for rows.Next() {
		var a, b, c []byte
		require.NoError(t, rows.Scan(&a, &b, &c))
		out.Write(a)
		out.Write(b)
		out.Write(c)
	}
	require.NoError(t, rows.Err())
	return out.Bytes()
}

func TestPostgres_Conformance(t *testing.T) {
	db := openDB(t)
	cachetest.Run(t, cachetest.Harness{
		Open: func(t *testing.T, cfg cache.Config, opts ...cache.Option) (*cache.Store, error) {
			cfg.Backend = db
			return cache.Open(cfg, opts...)
		},
		Raw: rawTenant,
	})
}
