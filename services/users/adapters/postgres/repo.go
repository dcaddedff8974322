// Package postgres stores users and signing keys in the users database.
package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/users/app"
	"github.com/msctl/msctl/services/users/domain"
)

var (
	_ app.Repository = (*Repo)(nil)
	_ app.KeyStore   = (*Repo)(nil)
)

// Repo is the Postgres repository.
type Repo struct {
	db *pgxpool.Pool
}

// New returns a Repo over db.
func New(db *pgxpool.Pool) *Repo { return &Repo{db: db} }

// Create inserts a user.
func (r *Repo) Create(ctx context.Context, u domain.User) error {
	_, err := r.db.Exec(ctx,
		`INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, u.Email, u.Name, u.PasswordHash, u.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return domain.ErrEmailTaken
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// ByEmail finds a user by normalised email.
func (r *Repo) ByEmail(ctx context.Context, email string) (domain.User, error) {
	return r.one(ctx, `SELECT id::text, email, name, password_hash, created_at FROM users WHERE email = $1`, email)
}

// ByID finds a user by id.
func (r *Repo) ByID(ctx context.Context, id string) (domain.User, error) {
	return r.one(ctx, `SELECT id::text, email, name, password_hash, created_at FROM users WHERE id = $1`, id)
}

func (r *Repo) one(ctx context.Context, q string, arg string) (domain.User, error) {
	var u domain.User
	err := r.db.QueryRow(ctx, q, arg).Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, domain.ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("select user: %w", err)
	}
	return u, nil
}

// keyLock serialises the first-start key creation of concurrent replicas.
const keyLock = 0x75736572 // "user"

// EnsureKey stores candidate if the table is empty and returns every key, oldest first.
func (r *Repo) EnsureKey(ctx context.Context, candidate app.SigningKey) ([]app.SigningKey, error) {
	tx, err := r.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keyLock); err != nil {
		return nil, fmt.Errorf("lock signing keys: %w", err)
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO signing_keys (kid, seed) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)`,
		candidate.ID, []byte(candidate.Private.Seed())); err != nil {
		return nil, fmt.Errorf("insert signing key: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT kid, seed FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("select signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (app.SigningKey, error) {
		var (
			kid  string
			seed []byte
		)
		if err := row.Scan(&kid, &seed); err != nil {
			return app.SigningKey{}, err
		}
		if len(seed) != ed25519.SeedSize {
			return app.SigningKey{}, fmt.Errorf("signing key %s has a %d-byte seed", kid, len(seed))
		}
		return app.SigningKey{ID: kid, Private: ed25519.NewKeyFromSeed(seed)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit signing key: %w", err)
	}
	return keys, nil
}
