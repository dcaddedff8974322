package api_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/httpx"
	"github.com/msctl/msctl/services/kit/httpx/httpxtest"
	"github.com/msctl/msctl/services/kit/pg"
	"github.com/msctl/msctl/services/users/adapters/postgres"
	"github.com/msctl/msctl/services/users/api"
	"github.com/msctl/msctl/services/users/app"
	"github.com/msctl/msctl/services/users/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	issuer   = "msctl-users"
	audience = "msctl"
)

// start serves the users API over a real database at dsn, the way main wires it.
func start(t *testing.T, dsn string) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pg.Open(ctx, dsn, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	repo := postgres.New(db)
	key, published, err := app.LoadKeys(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(repo, app.NewIssuer(key, published, app.TokenConfig{Issuer: issuer, Audience: audience, TTL: time.Hour}), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpx.New(httpx.Options{Service: "users"})
	api.Register(srv.Mux, a)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func TestSignupLoginLookup(t *testing.T) {
	ts := start(t, testenv.Database(t, "users"))

	var u user
	if code := httpxtest.Call(t, ts, "POST", "/api/v1/auth/signup", `{"email":"Ann@Example.com","password":"s3cret-pw","name":"Ann"}`, &u); code != http.StatusCreated {
		t.Fatalf("signup = %d", code)
	}
	if u.ID == "" || u.Email != "ann@example.com" || u.Name != "Ann" {
		t.Fatalf("signup body = %+v", u)
	}

	var e errBody
	if code := httpxtest.Call(t, ts, "POST", "/api/v1/auth/signup", `{"email":"ann@example.com","password":"other-pw1","name":"Ann 2"}`, &e); code != http.StatusConflict || e.Error.Code != "email_taken" {
		t.Fatalf("duplicate signup = %d %+v", code, e)
	}

	invalid := []struct{ name, body string }{
		{"bad email", `{"email":"ann","password":"s3cret-pw","name":"A"}`},
		{"short password", `{"email":"b@example.com","password":"short","name":"A"}`},
		{"empty name", `{"email":"b@example.com","password":"s3cret-pw","name":" "}`},
		{"missing fields", `{}`},
		{"unknown field", `{"email":"b@example.com","password":"s3cret-pw","name":"B","admin":true}`},
		{"not json", `email=b`},
		{"wrong type", `{"email":1,"password":"s3cret-pw","name":"B"}`},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			var e errBody
			if code := httpxtest.Call(t, ts, "POST", "/api/v1/auth/signup", tt.body, &e); code != http.StatusBadRequest || e.Error.Code == "" {
				t.Fatalf("signup %s = %d %+v", tt.body, code, e)
			}
		})
	}

	var wrongPw, wrongEmail errBody
	c1 := httpxtest.Call(t, ts, "POST", "/api/v1/auth/login", `{"email":"ann@example.com","password":"wrong-pass"}`, &wrongPw)
	c2 := httpxtest.Call(t, ts, "POST", "/api/v1/auth/login", `{"email":"nobody@example.com","password":"s3cret-pw"}`, &wrongEmail)
	if c1 != http.StatusUnauthorized || c2 != http.StatusUnauthorized || wrongPw != wrongEmail {
		t.Fatalf("wrong password = %d %+v, wrong email = %d %+v: want the same 401", c1, wrongPw, c2, wrongEmail)
	}

	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if code := httpxtest.Call(t, ts, "POST", "/api/v1/auth/login", `{"email":"ANN@example.com","password":"s3cret-pw"}`, &tok); code != http.StatusOK {
		t.Fatalf("login = %d", code)
	}
	if d := time.Until(tok.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("expires_at %v is not an hour away", tok.ExpiresAt)
	}
	claims := verify(t, ts, tok.Token)
	if claims.Subject != u.ID {
		t.Fatalf("sub = %q, want %q", claims.Subject, u.ID)
	}

	var got user
	if code := httpxtest.Call(t, ts, "GET", "/internal/users/"+u.ID, "", &got); code != http.StatusOK || got != u {
		t.Fatalf("internal user = %d %+v, want %+v", code, got, u)
	}
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid"} {
		var e errBody
		if code := httpxtest.Call(t, ts, "GET", "/internal/users/"+id, "", &e); code != http.StatusNotFound || e.Error.Code != "user_not_found" {
			t.Fatalf("unknown user %s = %d %+v", id, code, e)
		}
	}
}

// verify checks a token the way the gateway does: EdDSA only, key from the JWKS by kid, iss, aud
// and exp required.
func verify(t *testing.T, ts *httptest.Server, token string) *jwt.RegisteredClaims {
	t.Helper()
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg string } `json:"keys"`
	}
	if code := httpxtest.Call(t, ts, "GET", "/.well-known/jwks.json", "", &set); code != http.StatusOK || len(set.Keys) == 0 {
		t.Fatalf("jwks = %d %+v", code, set)
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" && k.Alg == "EdDSA" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				if err != nil {
					return nil, err
				}
				return ed25519.PublicKey(x), nil
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	return claims
}

func TestSigningKeySurvivesRestart(t *testing.T) {
	dsn := testenv.Database(t, "users_restart")
	first := start(t, dsn)
	if code := httpxtest.Call(t, first, "POST", "/api/v1/auth/signup", `{"email":"k@example.com","password":"s3cret-pw","name":"K"}`, nil); code != http.StatusCreated {
		t.Fatalf("signup = %d", code)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if code := httpxtest.Call(t, first, "POST", "/api/v1/auth/login", `{"email":"k@example.com","password":"s3cret-pw"}`, &tok); code != http.StatusOK {
		t.Fatalf("login = %d", code)
	}
	first.Close()

	second := start(t, dsn)
	verify(t, second, tok.Token)
}
