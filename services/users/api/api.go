// Package api is the users service's HTTP interface.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/msctl/msctl/services/kit/errs"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/users/app"
	"github.com/msctl/msctl/services/users/domain"
)

// Users is what the handlers need from the app layer.
type Users interface {
	Signup(ctx context.Context, email, password, name string) (domain.User, error)
	Login(ctx context.Context, email, password string) (app.Token, error)
	User(ctx context.Context, id string) (domain.User, error)
	JWKS() app.JWKSet
}

var _ Users = (*app.App)(nil)

// Register routes the users endpoints on mux.
func Register(mux *http.ServeMux, u Users) {
	h := &handlers{u: u}
	mux.HandleFunc("POST /api/v1/auth/signup", h.signup)
	mux.HandleFunc("POST /api/v1/auth/login", h.login)
	mux.HandleFunc("GET /.well-known/jwks.json", h.jwks)
	mux.HandleFunc("GET /internal/users/{id}", h.user)
}

type handlers struct {
	u Users
}

type userJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func toJSON(u domain.User) userJSON { return userJSON{ID: u.ID, Email: u.Email, Name: u.Name} }

func (h *handlers) signup(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	u, err := h.u.Signup(r.Context(), in.Email, in.Password, in.Name)
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, toJSON(u))
}

func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	tok, err := h.u.Login(r.Context(), in.Email, in.Password)
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}{tok.Token, tok.ExpiresAt.UTC()})
}

func (h *handlers) jwks(w http.ResponseWriter, r *http.Request) {
	// Verifiers cache the set; keys change only when a new one is added.
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.WriteJSON(w, http.StatusOK, h.u.JWKS())
}

func (h *handlers) user(w http.ResponseWriter, r *http.Request) {
	u, err := h.u.User(r.Context(), r.PathValue("id"))
	if err != nil {
		httpx.WriteError(w, r, mapErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, toJSON(u))
}

func mapErr(err error) error {
	var ve *domain.ValidationError
	switch {
	case errors.As(err, &ve):
		return errs.BadRequest("invalid_request", ve.Error())
	case errors.Is(err, domain.ErrEmailTaken):
		return errs.Conflict("email_taken", "an account with this email already exists")
	case errors.Is(err, domain.ErrInvalidCredentials):
		return errs.Unauthorized("invalid_credentials", "invalid email or password")
	case errors.Is(err, domain.ErrNotFound):
		return errs.NotFound("user_not_found", "user not found")
	}
	return err
}
