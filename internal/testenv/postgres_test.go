package testenv

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgresDatabaseIsolated(t *testing.T) {
	begin := time.Now()
	s := Postgres(t)
	t.Logf("shared postgres ready in %v", time.Since(begin))
	if Postgres(t) != s {
		t.Fatal("second call started another server")
	}
	a, b := Database(t, "Orders Test"), Database(t, "orders test")
	if a == b {
		t.Fatalf("two databases share a DSN: %s", a)
	}
	createTable(t, a)

	// a's role on b's database.
	dbA, dbB := dbName(t, a), dbName(t, b)
	cross := strings.Replace(a, "/"+dbA+"?", "/"+dbB+"?", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, cross); err == nil {
		c.Close(ctx)
		t.Fatalf("role of %s connected to %s", dbA, dbB)
	}
}

// createTable connects to dsn and creates a table, as the owner of a
// database may.
func createTable(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

func TestPostgresParallelDatabases(t *testing.T) {
	for i := range 4 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			createTable(t, Database(t, "parallel"))
		})
	}
}

func TestUniqueName(t *testing.T) {
	tests := []struct{ in, prefix string }{
		{"users", "users_"},
		{"Orders Test", "orders_test_"},
		{"42", "db_42_"},
		{"", "db__"},
		{strings.Repeat("x", 80), strings.Repeat("x", 40) + "_"},
	}
	for _, tt := range tests {
		if got := uniqueName(tt.in); !strings.HasPrefix(got, tt.prefix) || len(got) > 63 {
			t.Errorf("uniqueName(%q) = %q, want prefix %q and at most 63 bytes", tt.in, got, tt.prefix)
		}
	}
}
