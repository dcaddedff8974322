// Package testenv gives tests real infrastructure: Docker and Pact checks,
// a PostgreSQL server, embedded NATS and embedded etcd.
//
// Postgres is shared: one server per test binary, started lazily by the first
// Postgres or Database call, because initdb costs seconds while a database
// costs milliseconds. Go has no hook for "the test binary is done", so a
// package that uses it must own its TestMain and call Main:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Main runs the tests, then stops the server and removes its files. Postgres
// fails a test whose package did not do this, rather than leak a server. (If
// the binary dies anyway, the kernel stops postgres: see pgserver.)
// Each test gets its own database and role from Database, dropped when the
// test ends, so tests in one package may run in parallel.
//
// NATS and etcd start in milliseconds, so every test gets its own, in its
// own temporary directory, stopped by t.Cleanup.
//
// Missing Postgres binaries skip the test locally and fail it when CI is set.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/infra/pgserver"
)

// pgStartTimeout covers initdb plus startup on a loaded 2-core machine.
const pgStartTimeout = 2 * time.Minute

var (
	mainRunning atomic.Bool

	pgMu     sync.Mutex
	pgServer *pgserver.Server
	pgDir    string
	pgErr    error // a failed start is not retried by every later test

	dbSeq atomic.Int64
)

// Main runs the package's tests and then stops the shared servers. Call it
// from TestMain; it does not return.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopPostgres(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Postgres returns the test binary's shared server, starting it on first use.
func Postgres(t testing.TB) *pgserver.Server {
	t.Helper()
	if !mainRunning.Load() {
		t.Fatal("testenv.Postgres shares one server per test binary and needs the package's TestMain to call testenv.Main(m) so it is stopped at the end")
	}
	if _, err := pgserver.FindBin(); err != nil {
		unavailable(t, "postgres unavailable: %v", err)
	}
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgServer == nil && pgErr == nil {
		pgServer, pgErr = startPostgres()
	}
	if pgErr != nil {
		t.Fatalf("start shared postgres: %v", pgErr)
	}
	return pgServer
}

func startPostgres() (*pgserver.Server, error) {
	dir, err := os.MkdirTemp("", "msctl-testpg-")
	if err != nil {
		return nil, fmt.Errorf("create postgres directory: %w", err)
	}
	// MkdirTemp makes it 0700; as root the server runs as another user that
	// must be able to enter it.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open postgres directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgStartTimeout)
	defer cancel()
	s, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pgDir = dir
	return s, nil
}

func stopPostgres() error {
	pgMu.Lock()
	defer pgMu.Unlock()
	if pgServer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := pgServer.Stop(ctx)
	pgServer = nil
	if rmErr := os.RemoveAll(pgDir); rmErr != nil && err == nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("stop shared postgres: %w", err)
	}
	return nil
}

// Database creates a fresh database owned by a fresh role of the same name,
// derived from name and unique in the test binary, and returns that role's
// DSN. Other roles cannot connect to it. Both are dropped when the test ends.
func Database(t testing.TB, name string) string {
	t.Helper()
	s := Postgres(t)
	db := uniqueName(name)
	pw := make([]byte, 12)
	rand.Read(pw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := s.EnsureDatabase(ctx, db, db, hex.EncodeToString(pw))
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx, db, db); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return dsn
}

// uniqueName turns name into a lower-case identifier with a sequence suffix,
// e.g. "Orders Test" -> "orders_test_3".
func uniqueName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	base := b.String()
	if base == "" || (base[0] >= '0' && base[0] <= '9') {
		base = "db_" + base
	}
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("%s_%d", base, dbSeq.Add(1))
}
