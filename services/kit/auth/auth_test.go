package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "msctl-users"
	testAudience = "msctl"
	testKid      = "k1"
)

type testKeys struct {
	ed   ed25519.PrivateKey
	rsa  *rsa.PrivateKey
	jwks []byte
}

var (
	keysOnce sync.Once
	keys     testKeys
)

// fixture generates one Ed25519 and one RSA key per test binary.
func fixture(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		_, ed, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		b64 := base64.RawURLEncoding.EncodeToString
		doc := map[string]any{"keys": []map[string]string{
			{"kty": "OKP", "crv": "Ed25519", "kid": testKid, "alg": "EdDSA", "use": "sig", "x": b64(ed.Public().(ed25519.PublicKey))},
			{"kty": "RSA", "kid": "r1", "alg": "RS256", "n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes())},
		}}
		data, err := json.Marshal(doc)
		if err != nil {
			panic(err)
		}
		keys = testKeys{ed: ed, rsa: rk, jwks: data}
	})
	return keys
}

type staticFetcher struct {
	calls atomic.Int32
	data  func() ([]byte, error)
}

func (f *staticFetcher) FetchJWKS(context.Context) ([]byte, error) {
	f.calls.Add(1)
	return f.data()
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestVerifier(t testing.TB) (*Verifier, *staticFetcher) {
	k := fixture(t)
	f := &staticFetcher{data: func() ([]byte, error) { return k.jwks, nil }}
	return NewVerifier(NewKeyCache(f, time.Minute, discard()), testIssuer, testAudience), f
}

func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": "user-1", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for key, val := range c {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestVerify(t *testing.T) {
	k := fixture(t)
	v, _ := newTestVerifier(t)
	pub := []byte(k.ed.Public().(ed25519.PublicKey))
	hour := time.Hour
	noneTok := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name       string
		header     string
		wantSub    string
		wantReason string
	}{
		{"valid EdDSA", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, validClaims()), "user-1", ""},
		{"valid RS256", "Bearer " + sign(t, jwt.SigningMethodRS256, k.rsa, "r1", validClaims()), "user-1", ""},
		{"lower-case scheme", "bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, validClaims()), "user-1", ""},
		{"audience in list", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "aud", []string{"x", testAudience})), "user-1", ""},
		{"missing", "", "", "missing bearer token"},
		{"basic scheme", "Basic dXNlcjpwdw==", "", "Bearer"},
		{"no token", "Bearer  ", "", "Bearer"},
		{"alg none", "Bearer " + noneTok(), "", "token"},
		{"HS256 with public key bytes", "Bearer " + sign(t, jwt.SigningMethodHS256, pub, testKid, validClaims()), "", "token"},
		{"RS256 token on Ed25519 kid", "Bearer " + sign(t, jwt.SigningMethodRS256, k.rsa, testKid, validClaims()), "", "cannot be verified"},
		{"expired", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "exp", time.Now().Add(-hour).Unix())), "", "expired"},
		{"missing exp", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "exp", nil)), "", "required claim"},
		{"future nbf", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "nbf", time.Now().Add(hour).Unix())), "", "not valid yet"},
		{"wrong aud", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "aud", "other")), "", "audience"},
		{"missing aud", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "aud", nil)), "", "required claim"},
		{"wrong iss", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "iss", "evil")), "", "issuer"},
		{"unknown kid", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, "nope", validClaims()), "", "unknown key"},
		{"no kid", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, "", validClaims()), "", "cannot be verified"},
		{"missing sub", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "sub", nil)), "", "subject"},
		{"sub with spaces", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, with(validClaims(), "sub", "a b")), "", "subject"},
		{"malformed", "Bearer not.a.jwt", "", "malformed"},
		{"garbage", "Bearer %%%", "", "malformed"},
		{"tampered signature", "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, testKid, validClaims()) + "A", "", "token"},
		{"10 KB header", "Bearer " + strings.Repeat("a", 10<<10), "", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Verify(context.Background(), tt.header)
			if tt.wantReason == "" {
				if err != nil || sub != tt.wantSub {
					t.Fatalf("Verify = %q, %v; want %q", sub, err, tt.wantSub)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Verify = %q, %v; want *Error", sub, err)
			}
			if !strings.Contains(ae.Reason, tt.wantReason) {
				t.Fatalf("reason %q does not contain %q (err %v)", ae.Reason, tt.wantReason, err)
			}
		})
	}
}

func TestUnknownKidRefreshIsRateLimited(t *testing.T) {
	k := fixture(t)
	v, f := newTestVerifier(t)
	bad := "Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, "made-up", validClaims())

	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), bad); err == nil {
				t.Error("made-up kid verified")
			}
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("jwks fetched %d times for a flood of unknown kids, want 1", n)
	}
}

func TestKeyCacheRotation(t *testing.T) {
	k := fixture(t)
	var mu sync.Mutex
	doc, fetchErr := k.jwks, error(nil)
	f := &staticFetcher{data: func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		return doc, fetchErr
	}}
	c := NewKeyCache(f, time.Second, discard())
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()

	if _, err := c.Key(ctx, testKid); err != nil {
		t.Fatalf("first lookup: %v", err)
	}
	// A failing refresh keeps the keys that were there.
	mu.Lock()
	fetchErr = errors.New("users down")
	mu.Unlock()
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh with a failing fetcher succeeded")
	}
	if _, err := c.Key(ctx, testKid); err != nil {
		t.Fatalf("key lost after failed refresh: %v", err)
	}

	// A rotated key becomes visible on the next allowed refresh.
	_, newKey, _ := ed25519.GenerateKey(rand.Reader)
	rotated, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "k2", "x": base64.RawURLEncoding.EncodeToString(newKey.Public().(ed25519.PublicKey)),
	}}})
	mu.Lock()
	doc, fetchErr = rotated, nil
	mu.Unlock()
	if _, err := c.Key(ctx, "k2"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("refresh within the rate limit: err = %v, want ErrUnknownKey", err)
	}
	now = now.Add(time.Second)
	if _, err := c.Key(ctx, "k2"); err != nil {
		t.Fatalf("rotated key after the rate limit: %v", err)
	}
	if _, err := c.Key(ctx, testKid); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key still served: %v", err)
	}
}

func TestRunFillsCache(t *testing.T) {
	k := fixture(t)
	var fail atomic.Bool
	fail.Store(true)
	f := &staticFetcher{data: func() ([]byte, error) {
		if fail.Load() {
			return nil, errors.New("not yet")
		}
		return k.jwks, nil
	}}
	c := NewKeyCache(f, 10*time.Millisecond, discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, time.Hour) }()
	fail.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Len() != 2 {
		t.Fatalf("cache has %d keys after Run, want 2", c.Len())
	}
}

func TestParseJWKS(t *testing.T) {
	k := fixture(t)
	x := base64.RawURLEncoding.EncodeToString(k.ed.Public().(ed25519.PublicKey))
	tests := []struct {
		name    string
		doc     string
		wantErr bool
		kids    []string
	}{
		{"fixture", string(k.jwks), false, []string{testKid, "r1"}},
		{"not json", "{", true, nil},
		{"no keys", `{"keys":[]}`, true, nil},
		{"encryption key skipped", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"` + x + `"}]}`, true, nil},
		{"no kid skipped", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}]}`, true, nil},
		{"wrong curve", `{"keys":[{"kty":"OKP","crv":"X25519","kid":"a","x":"` + x + `"}]}`, true, nil},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`, true, nil},
		{"alg mismatch", `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","alg":"HS256","x":"` + x + `"}]}`, true, nil},
		{"short RSA", `{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`, true, nil},
		{"one good one bad", `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"OKP","crv":"Ed25519","kid":"a","x":"` + x + `"}]}`, false, []string{"a"}},
		{"too big", `{"keys":[],"pad":"` + strings.Repeat("a", MaxJWKSBytes) + `"}`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJWKS([]byte(tt.doc))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseJWKS err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.kids) {
				t.Fatalf("got %d keys, want %v", len(got), tt.kids)
			}
			for _, kid := range tt.kids {
				if _, ok := got[kid]; !ok {
					t.Fatalf("kid %s missing", kid)
				}
			}
		})
	}
}
