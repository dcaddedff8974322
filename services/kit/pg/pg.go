// Package pg opens a service's Postgres pool and brings its schema up to date with the
// service's embedded goose migrations.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Open connects to dsn, waiting (until ctx ends) for a server that is still starting, and applies
// every pending migration found at the root of migrations (nil means none).
func Open(ctx context.Context, dsn string, migrations fs.FS) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := waitPing(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if migrations != nil {
		if err := Migrate(ctx, pool, migrations); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

func waitPing(ctx context.Context, pool *pgxpool.Pool) error {
	wait := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := pool.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if isPermanent(err) {
			return fmt.Errorf("connect to database: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to database: %w", err)
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

// isPermanent tells refusals (bad password, no such database, no permission) from a server that
// is not up yet; retrying the former only delays the error.
func isPermanent(err error) bool {
	var pgErr interface{ SQLState() string }
	if !errors.As(err, &pgErr) {
		return false
	}
	state := pgErr.SQLState()
	if len(state) < 2 {
		return false
	}
	switch state[:2] {
	case "28", "3D", "42": // invalid authorization, invalid catalog name, access rule violation
		return true
	}
	return false
}

// Migrate applies pending goose migrations from the root of migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool, migrations fs.FS) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	// Replicas of one service start together; an advisory lock lets exactly one migrate.
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("create migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}
