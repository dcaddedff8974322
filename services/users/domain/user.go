// Package domain holds the users service's types and the rules a signup must satisfy.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Password bounds: bcrypt only reads the first 72 bytes, so longer passwords are refused rather
// than silently truncated.
const (
	MinPasswordLen   = 8
	MaxPasswordBytes = 72
	MaxNameLen       = 200
	MaxEmailLen      = 254
)

var (
	// ErrEmailTaken means another account already uses the email.
	ErrEmailTaken = errors.New("email already registered")
	// ErrNotFound means no such user.
	ErrNotFound = errors.New("user not found")
	// ErrInvalidCredentials covers both an unknown email and a wrong password, on purpose.
	ErrInvalidCredentials = errors.New("invalid email or password")
)

// User is an account.
type User struct {
	ID           string
	Email        string
	Name         string
	PasswordHash []byte
	CreatedAt    time.Time
}

// ValidationError names the field that broke a rule.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Signup is a validated, normalised signup request.
type Signup struct {
	Email    string
	Password string
	Name     string
}

// NewSignup validates and normalises a signup: the email is trimmed and lower-cased, the name
// trimmed; the password is kept exactly as given.
func NewSignup(email, password, name string) (Signup, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Signup{}, err
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return Signup{}, &ValidationError{"password", fmt.Sprintf("must be at least %d characters", MinPasswordLen)}
	}
	if len(password) > MaxPasswordBytes {
		return Signup{}, &ValidationError{"password", fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)}
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return Signup{}, &ValidationError{"name", "must not be empty"}
	}
	if utf8.RuneCountInString(name) > MaxNameLen {
		return Signup{}, &ValidationError{"name", fmt.Sprintf("must be at most %d characters", MaxNameLen)}
	}
	return Signup{Email: email, Password: password, Name: name}, nil
}

// NormalizeEmail checks the shape local@domain.tld and returns the address trimmed and
// lower-cased, which is how it is stored and looked up.
func NormalizeEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	bad := &ValidationError{"email", "must be an address like name@example.com"}
	if email == "" || len(email) > MaxEmailLen {
		return "", bad
	}
	// ParseAddress accepts display names ("Bob <b@x.io>"); only a bare address is wanted.
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", bad
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.ContainsAny(email, " \t\r\n") {
		return "", bad
	}
	return email, nil
}
