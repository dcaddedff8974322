package pgserver

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs for objects that a concurrent caller created first.
const (
	duplicateObject   = "42710"
	duplicateDatabase = "42P04"
)

// maxIdent is PostgreSQL's identifier limit (NAMEDATALEN-1); longer names
// would be truncated silently, so two services could end up sharing one.
const maxIdent = 63

// EnsureDatabase makes sure that role exists with LOGIN and password, that
// database name exists and is owned by role, and that no other role (except
// superusers) may connect to it. It is idempotent and returns role's DSN.
func (s *Server) EnsureDatabase(ctx context.Context, name, role, password string) (string, error) {
	conn, err := s.admin(ctx, "postgres")
	if err != nil {
		return "", fmt.Errorf("ensure database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if err := Provision(ctx, conn, name, role, password); err != nil {
		return "", err
	}
	return s.dsn(role, password, name), nil
}

// Provision does the work of EnsureDatabase over a superuser connection to
// any server: the Docker runtime provisions its Postgres container with it.
func Provision(ctx context.Context, conn *pgx.Conn, name, role, password string) error {
	if err := checkIdent("database", name); err != nil {
		return err
	}
	if err := checkIdent("role", role); err != nil {
		return err
	}
	if role == Superuser {
		return fmt.Errorf("ensure database %s: role %s is the superuser, not a service role", name, role)
	}
	if password == "" {
		return fmt.Errorf("ensure database %s: empty password for role %s", name, role)
	}
	if err := ensureRole(ctx, conn, role, password); err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	if err := ensureOwnedDB(ctx, conn, name, role); err != nil {
		return fmt.Errorf("ensure database %s: %w", name, err)
	}
	// Database-per-service isolation: by default PUBLIC may connect to every
	// database, so another service's role could read this one.
	if _, err := conn.Exec(ctx, "REVOKE ALL ON DATABASE "+ident(name)+" FROM PUBLIC"); err != nil {
		return fmt.Errorf("ensure database %s: revoke public access: %w", name, err)
	}
	return nil
}

func ensureRole(ctx context.Context, conn *pgx.Conn, role, password string) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return fmt.Errorf("look up role %s: %w", role, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE ROLE "+ident(role)+" LOGIN PASSWORD "+literal(password))
		if err == nil {
			return nil
		}
		if !hasCode(err, duplicateObject) {
			return fmt.Errorf("create role %s: %w", role, err)
		}
	}
	// Existing role: make the given password the current one.
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(role)+" LOGIN PASSWORD "+literal(password)); err != nil {
		return fmt.Errorf("alter role %s: %w", role, err)
	}
	return nil
}

func ensureOwnedDB(ctx context.Context, conn *pgx.Conn, name, role string) error {
	var owner string
	err := conn.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" OWNER "+ident(role))
		if err == nil {
			return nil
		}
		if !hasCode(err, duplicateDatabase) {
			return fmt.Errorf("create database: %w", err)
		}
	case err != nil:
		return fmt.Errorf("look up database: %w", err)
	case owner == role:
		return nil
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" OWNER TO "+ident(role)); err != nil {
		return fmt.Errorf("set owner to %s: %w", role, err)
	}
	return nil
}

// DropDatabase drops database name, disconnecting its sessions, and then
// role when it is not empty. Missing objects are not an error.
func (s *Server) DropDatabase(ctx context.Context, name, role string) error {
	conn, err := s.admin(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if role == "" {
		return nil
	}
	if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(role)); err != nil {
		return fmt.Errorf("drop role %s: %w", role, err)
	}
	return nil
}

func checkIdent(kind, v string) error {
	if v == "" || len(v) > maxIdent {
		return fmt.Errorf("%s name %q: want 1 to %d bytes", kind, v, maxIdent)
	}
	return nil
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
