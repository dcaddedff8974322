package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary Authorization headers to the verifier: it must
// never panic and every failure must be a client-facing *Error.
func FuzzVerify(f *testing.F) {
	k := fixture(f)
	f.Add("Bearer " + sign(f, jwt.SigningMethodEdDSA, k.ed, testKid, validClaims()))
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("Bearer a.b.c")
	f.Add("Bearer ....")
	f.Add("bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.e30.AAAA")
	f.Add("Basic Zm9vOmJhcg==")
	f.Add("")
	v, _ := newTestVerifier(f)
	f.Fuzz(func(t *testing.T, header string) {
		sub, err := v.Verify(context.Background(), header)
		if err == nil {
			if sub == "" {
				t.Fatal("verified with an empty subject")
			}
			return
		}
		var ae *Error
		if !errors.As(err, &ae) || ae.Reason == "" {
			t.Fatalf("error %v is not a client-facing *Error", err)
		}
	})
}

// FuzzParseJWKS: arbitrary documents never panic and never yield a key
// without a usable algorithm.
func FuzzParseJWKS(f *testing.F) {
	f.Add(fixture(f).jwks)
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || (k.Alg != "EdDSA" && k.Alg != "RS256") || k.Public == nil {
				t.Fatalf("unusable key %q: %+v", kid, k)
			}
		}
	})
}
