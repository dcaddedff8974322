// Package app holds the users service's use cases: signup, login, lookup.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/msctl/msctl/services/users/domain"
)

// Repository stores users.
type Repository interface {
	// Create inserts u; a taken email is domain.ErrEmailTaken.
	Create(ctx context.Context, u domain.User) error
	// ByEmail finds a user by normalised email; domain.ErrNotFound when absent.
	ByEmail(ctx context.Context, email string) (domain.User, error)
	// ByID finds a user; domain.ErrNotFound when absent.
	ByID(ctx context.Context, id string) (domain.User, error)
}

// Token is a login result.
type Token struct {
	Token     string
	ExpiresAt time.Time
}

// App implements the use cases.
type App struct {
	repo      Repository
	issuer    *Issuer
	cost      int
	now       func() time.Time
	dummyHash []byte
}

// New builds the App. cost is the bcrypt cost (bcrypt.MinCost..bcrypt.MaxCost).
func New(repo Repository, issuer *Issuer, cost int) (*App, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	// Logins for unknown emails still compare against a hash of the same cost, so response time
	// does not reveal which emails exist.
	dummy, err := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), cost)
	if err != nil {
		return nil, fmt.Errorf("prepare dummy hash: %w", err)
	}
	return &App{repo: repo, issuer: issuer, cost: cost, now: time.Now, dummyHash: dummy}, nil
}

// Signup creates an account.
func (a *App) Signup(ctx context.Context, email, password, name string) (domain.User, error) {
	s, err := domain.NewSignup(email, password, name)
	if err != nil {
		return domain.User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), a.cost)
	if err != nil {
		return domain.User{}, fmt.Errorf("hash password: %w", err)
	}
	u := domain.User{
		ID:           uuid.NewString(),
		Email:        s.Email,
		Name:         s.Name,
		PasswordHash: hash,
		CreatedAt:    a.now().UTC(),
	}
	if err := a.repo.Create(ctx, u); err != nil {
		return domain.User{}, err
	}
	return u, nil
}

// Login checks the credentials and issues a token. Any mismatch is domain.ErrInvalidCredentials.
func (a *App) Login(ctx context.Context, email, password string) (Token, error) {
	norm, err := domain.NormalizeEmail(email)
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(password))
		return Token{}, domain.ErrInvalidCredentials
	}
	u, err := a.repo.ByEmail(ctx, norm)
	if errors.Is(err, domain.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(password))
		return Token{}, domain.ErrInvalidCredentials
	}
	if err != nil {
		return Token{}, err
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)); err != nil {
		return Token{}, domain.ErrInvalidCredentials
	}
	tok, exp, err := a.issuer.Issue(u.ID, a.now())
	if err != nil {
		return Token{}, err
	}
	return Token{Token: tok, ExpiresAt: exp}, nil
}

// User looks a user up by id.
func (a *App) User(ctx context.Context, id string) (domain.User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return domain.User{}, domain.ErrNotFound
	}
	return a.repo.ByID(ctx, id)
}

// JWKS is the public key set verifiers use.
func (a *App) JWKS() JWKSet { return a.issuer.JWKS() }
