package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/auth/authtest"
)

// A service acts for a user only on a token it verified itself: a request
// that goes around the gateway straight to orders or notifications with a
// hand-made X-User-ID, no token or a token signed by anyone but the users
// service is refused with 401; the customer's own token is accepted, so
// the check is the token, not the path the request took.
func TestServicesTrustOnlyVerifiedTokens(t *testing.T) {
	ensureUp(t)
	token, _ := signup(t)
	userID := subject(t, token)
	for _, svc := range []string{"orders", "notifications"} {
		direct := &testenv.API{T: t, Base: "http://" + component(shop.PS(t), svc).Endpoint}
		path := "/api/v1/" + svc
		cases := []struct {
			name  string
			token string
			hdr   http.Header
			want  int
		}{
			{"hand-made user header", "", http.Header{"X-User-ID": {userID}}, http.StatusUnauthorized},
			{"token of another issuer", strings.TrimPrefix(authtest.Bearer(t, userID), "Bearer "), nil, http.StatusUnauthorized},
			{"the customer's token", token, nil, http.StatusOK},
		}
		for _, c := range cases {
			r := direct.Call(http.MethodGet, path, c.token, c.hdr, nil)
			if r.Status != c.want {
				t.Errorf("%s, %s: %d %s, want %d", svc, c.name, r.Status, r.Body, c.want)
			}
			if c.want == http.StatusUnauthorized && !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s, %s: no bearer challenge", svc, c.name)
			}
		}
	}
	// Through the gateway the customer is still served, by the same check.
	if r := gateway(t).Call(http.MethodGet, "/api/v1/orders", token, nil, nil); r.Status != http.StatusOK {
		t.Errorf("orders through the gateway: %d %s", r.Status, r.Body)
	}
}

// subject reads a token's sub claim (the user id) without checking it.
func subject(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub == "" {
		t.Fatalf("token claims %s: %v", raw, err)
	}
	return claims.Sub
}
