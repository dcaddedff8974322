package pg_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/pg"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var migrations = fstest.MapFS{
	"00001_a.sql": {Data: []byte("-- +goose Up\nCREATE TABLE a (id int PRIMARY KEY);\n-- +goose Down\nDROP TABLE a;\n")},
	"00002_b.sql": {Data: []byte("-- +goose Up\nINSERT INTO a VALUES (1);\n-- +goose Down\nDELETE FROM a;\n")},
}

func TestOpenMigratesOnceAndInTx(t *testing.T) {
	dsn := testenv.Database(t, "kit_pg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 { // a restart applies nothing twice
		db, err := pg.Open(ctx, dsn, migrations)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM a`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rows = %d, %v", n, err)
		}
		boom := errors.New("boom")
		err = pg.InTx(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO a VALUES (2)`); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		if err := db.QueryRow(ctx, `SELECT count(*) FROM a`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("rolled back insert visible: rows = %d, %v", n, err)
		}
		db.Close()
	}
}

func TestOpenFailsFastOnRefusal(t *testing.T) {
	dsn := testenv.Database(t, "kit_pg_refused")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(dsn, ":"+cfg.Password+"@", ":wrong@", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pg.Open(ctx, bad, nil)
	if err == nil {
		t.Fatal("opened with a wrong password")
	}
	// A refusal is returned as such, not retried until the deadline.
	if ctx.Err() != nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("Open = %v (context %v), want the refusal itself", err, ctx.Err())
	}
}
