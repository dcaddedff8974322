package pgserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// dataDir returns a fresh data directory the server account can reach:
// t.TempDir's parent is 0700, which the postgres user cannot traverse.
func dataDir(t *testing.T) string {
	t.Helper()
	if _, err := FindBin(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "pg")
}

func start(t *testing.T, dir string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	begin := time.Now()
	s, err := Start(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres ready in %v (pid %d, port %d)", time.Since(begin), s.PID(), s.Port())
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func execSQL(t *testing.T, dsn, sql string, args ...any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func TestPostgresDatabasesAndRestart(t *testing.T) {
	dir := dataDir(t)
	s := start(t, dir)
	ctx := context.Background()

	usersDSN, err := s.EnsureDatabase(ctx, "users", "users", "users-pw")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.EnsureDatabase(ctx, "users", "users", "users-pw")
	if err != nil {
		t.Fatalf("second EnsureDatabase: %v", err)
	}
	if again != usersDSN {
		t.Fatalf("DSN changed between calls: %s vs %s", usersDSN, again)
	}
	invDSN, err := s.EnsureDatabase(ctx, "inventory", "inventory", "inventory-pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := execSQL(t, usersDSN, "CREATE TABLE accounts (email text PRIMARY KEY)"); err != nil {
		t.Fatalf("owner cannot create a table: %v", err)
	}
	if err := execSQL(t, usersDSN, "INSERT INTO accounts VALUES ($1)", "a@example.com"); err != nil {
		t.Fatal(err)
	}

	// The inventory role is refused when it connects to the users database.
	cross := strings.Replace(invDSN, "/inventory?", "/users?", 1)
	err = execSQL(t, cross, "SELECT 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("inventory role on users database: got %v, want insufficient_privilege (42501)", err)
	}
	if err := execSQL(t, s.DSN("users"), "SELECT count(*) FROM accounts"); err != nil {
		t.Fatalf("superuser DSN: %v", err)
	}

	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	s = start(t, dir)
	usersDSN, err = s.EnsureDatabase(ctx, "users", "users", "users-pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := execSQL(t, usersDSN, "DELETE FROM accounts WHERE email = $1", "a@example.com"); err != nil {
		t.Fatalf("data after restart: %v", err)
	}

	// A killed server leaves postmaster.pid behind; the next start copes.
	if err := syscall.Kill(-s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
		t.Fatalf("a killed server should leave its pid file: %v", err)
	}
	s = start(t, dir)
	if err := execSQL(t, s.DSN("users"), "SELECT count(*) FROM accounts"); err != nil {
		t.Fatalf("after crash: %v", err)
	}

	if err := s.DropDatabase(ctx, "inventory", "inventory"); err != nil {
		t.Fatal(err)
	}
	if err := execSQL(t, invDSN, "SELECT 1"); err == nil {
		t.Fatal("dropped database still accepts its role")
	}
}

func TestCheckTraverse(t *testing.T) {
	root := t.TempDir()
	closed := filepath.Join(root, "closed")
	open := filepath.Join(root, "open")
	for dir, mode := range map[string]os.FileMode{closed: 0o700, open: 0o711} {
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stranger := account{name: "stranger", uid: 4242424, gid: 4242424, switched: true}
	tests := []struct {
		name    string
		acct    account
		dir     string
		wantErr bool
	}{
		{"open parent", stranger, filepath.Join(open, "data"), false},
		{"missing dirs below open parent", stranger, filepath.Join(open, "a", "b", "data"), false},
		{"closed parent", stranger, filepath.Join(closed, "data"), true},
		{"same user needs no check", account{}, filepath.Join(closed, "data"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.acct.checkTraverse(tt.dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkTraverse(%s) = %v, want error %v", tt.dir, err, tt.wantErr)
			}
		})
	}
}

func TestVersionOrder(t *testing.T) {
	tests := []struct {
		dir  string
		want float64
	}{
		{"/usr/lib/postgresql/15/bin", 15},
		{"/usr/lib/postgresql/9.6/bin", 9.6},
		{"/usr/lib/postgresql/dev/bin", -1},
	}
	for _, tt := range tests {
		if got := versionOf(tt.dir); got != tt.want {
			t.Errorf("versionOf(%s) = %v, want %v", tt.dir, got, tt.want)
		}
	}
}

func TestFindBinPrefersPathThenNewestComplete(t *testing.T) {
	writeExec := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	notFound := func(string) (string, error) { return "", errors.New("not found") }

	lib := t.TempDir()
	for _, v := range []string{"9.6", "14", "15"} {
		writeExec(filepath.Join(lib, v, "bin", "initdb"))
		writeExec(filepath.Join(lib, v, "bin", "postgres"))
	}
	writeExec(filepath.Join(lib, "16", "bin", "initdb")) // incomplete: no postgres
	got, err := findBin(notFound, lib)
	if err != nil || got != filepath.Join(lib, "15", "bin") {
		t.Errorf("newest = %q, %v", got, err)
	}

	onPath := t.TempDir()
	writeExec(filepath.Join(onPath, "initdb"))
	writeExec(filepath.Join(onPath, "postgres"))
	look := func(name string) (string, error) { return filepath.Join(onPath, name), nil }
	if got, err := findBin(look, lib); err != nil || got != onPath {
		t.Errorf("PATH = %q, %v; want %q", got, err, onPath)
	}

	if _, err := findBin(notFound, t.TempDir()); err == nil {
		t.Error("found binaries in an empty directory")
	}
}
