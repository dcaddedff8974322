// Package secrets keeps the workspace secret and derives from it the
// secrets msctl hands to services.
//
// One random master secret per workspace lives in .msctl/secret (0600).
// Nothing else is stored: every service secret is derived from it with
// HKDF-SHA256 under its own label, so a service gets only the keys it
// needs, the same keys on every run and every runtime, and losing a
// derived key never reveals the master or another service's key.
package secrets

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// File is the name of the master secret in a workspace's state directory.
const File = "secret"

// size is the master's and each derived key's length: 256 bits.
const size = 32

// Service environment variables. ServiceEnv is the service's own secret
// (to salt hashes, sign what only it reads); SharedPrefix + NAME carries a
// secret the manifest lets several services share (msctl.yaml `secrets:`).
const (
	ServiceEnv   = "MSCTL_SERVICE_SECRET"
	SharedPrefix = "MSCTL_SECRET_"
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// ValidName reports whether name can name a shared secret: lower case
// letters, digits and single dashes, starting with a letter.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// IsEnv reports whether an environment variable carries a secret msctl
// derived, so that runtimes keep it out of what they print or write in
// clear (a Kubernetes Deployment refers to a Secret instead).
func IsEnv(name string) bool {
	return name == ServiceEnv || strings.HasPrefix(name, SharedPrefix)
}

// EnvName is the variable that carries the shared secret name.
func EnvName(name string) string {
	return SharedPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// LoadOrCreate reads the master secret from dir/File, creating it (and
// dir) the first time. A file that is readable by others or has the wrong
// size is refused rather than used or replaced: replacing it would make
// everything sealed under it unreadable.
func LoadOrCreate(dir string) ([]byte, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return create(dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read workspace secret: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("workspace secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("workspace secret %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if len(b) != size {
		return nil, fmt.Errorf("workspace secret %s has %d bytes, want %d: restore it from a backup, or delete it to start over (data sealed under it becomes unreadable)", path, len(b), size)
	}
	return b, nil
}

func create(dir, path string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create workspace secret: %w", err)
	}
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("create workspace secret: %w", err)
	}
	// O_EXCL: when two msctl processes race, one creates and the other
	// reads what it wrote.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreate(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("create workspace secret: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write workspace secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write workspace secret: %w", err)
	}
	return b, nil
}

// Env returns the secret variables of one service: its own secret and
// each shared one it lists. Values are base64url, without padding.
func Env(master []byte, service string, shared []string) (map[string]string, error) {
	env := make(map[string]string, 1+len(shared))
	own, err := derive(master, "service/"+service)
	if err != nil {
		return nil, err
	}
	env[ServiceEnv] = own
	for _, name := range shared {
		v, err := derive(master, "shared/"+name)
		if err != nil {
			return nil, err
		}
		env[EnvName(name)] = v
	}
	return env, nil
}

func derive(master []byte, label string) (string, error) {
	k, err := hkdf.Key(sha256.New, master, nil, "msctl "+label, size)
	if err != nil {
		return "", fmt.Errorf("derive %s: %w", label, err)
	}
	return base64.RawURLEncoding.EncodeToString(k), nil
}
