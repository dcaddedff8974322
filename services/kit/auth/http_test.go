package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type failingFetcher struct{}

func (failingFetcher) FetchJWKS(context.Context) ([]byte, error) {
	return nil, errors.New("users is down")
}

// A service answers 401 for a token that proves no user, but 503 while it
// has no key at all (the users service was never reachable): the token
// may well be good.
func TestUserAnswers(t *testing.T) {
	k := fixture(t)
	good := "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, validClaims())
	withKeys, _ := newTestVerifier(t)
	noKeys := NewVerifier(NewKeyCache(failingFetcher{}, time.Minute, discard()), testIssuer, testAudience)
	for _, tc := range []struct {
		name   string
		v      *Verifier
		header string
		want   int
	}{
		{"good token", withKeys, good, http.StatusOK},
		{"no token", withKeys, "", http.StatusUnauthorized},
		{"bad token", withKeys, "Bearer x.y.z", http.StatusUnauthorized},
		{"keys unavailable", noKeys, good, http.StatusServiceUnavailable},
		{"keys unavailable, no token", noKeys, "", http.StatusUnauthorized},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/v1/orders", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		user, ok := tc.v.User(rec, req)
		if ok {
			rec.WriteHeader(http.StatusOK)
		}
		if rec.Code != tc.want || ok != (tc.want == http.StatusOK) || ok && user != "user-1" {
			t.Errorf("%s: %d user %q, want %d", tc.name, rec.Code, user, tc.want)
		}
	}
}
