package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestNewSignup(t *testing.T) {
	tests := []struct {
		name, email, password, userName string
		wantField                       string
		wantEmail                       string
	}{
		{name: "valid", email: " Ann@Example.COM ", password: "s3cretpw", userName: " Ann ", wantEmail: "ann@example.com"},
		{name: "unicode password counts runes", email: "a@b.io", password: "ééééééé€", userName: "A", wantEmail: "a@b.io"},
		{name: "empty email", email: "", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "no at", email: "ann.example.com", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "no tld", email: "ann@example", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "display name", email: "Ann <ann@example.com>", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "two ats", email: "a@b@c.io", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "space inside", email: "a b@c.io", password: "s3cretpw", userName: "A", wantField: "email"},
		{name: "short password", email: "a@b.io", password: "1234567", userName: "A", wantField: "password"},
		{name: "password over bcrypt limit", email: "a@b.io", password: strings.Repeat("x", 73), userName: "A", wantField: "password"},
		{name: "blank name", email: "a@b.io", password: "s3cretpw", userName: "   ", wantField: "name"},
		{name: "long name", email: "a@b.io", password: "s3cretpw", userName: strings.Repeat("n", MaxNameLen+1), wantField: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSignup(tt.email, tt.password, tt.userName)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("NewSignup: %v", err)
				}
				if s.Email != tt.wantEmail || s.Name != strings.TrimSpace(tt.userName) || s.Password != tt.password {
					t.Fatalf("NewSignup = %+v", s)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.wantField {
				t.Fatalf("NewSignup error = %v, want a validation error on %s", err, tt.wantField)
			}
		})
	}
}
