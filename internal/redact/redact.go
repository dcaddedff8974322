// Package redact decides which environment values msctl must never print
// and hides them: Mask for a variable shown as name=value (config env),
// Scrubber for free text that may contain them (service log lines, error
// messages built from them).
package redact

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Masked is what msctl prints instead of a secret.
const Masked = "****"

// MinScrub is the shortest value a Scrubber removes from free text: a
// shorter one ("dev", "1") would blank out ordinary words all over the
// logs. Such a value is still masked where it is shown as a variable.
const MinScrub = 6

// secretWords are parts of a variable name that mark its value secret
// wherever they appear in it (DB_PASSWORD, CLIENTSECRET, GITHUB_TOKEN).
var secretWords = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY", "PRIVATE"}

// secretParts are whole _-separated parts of a name that mark it secret
// (DB_PASS, PGPWD, but not PASSENGER or PWD_DIR's neighbours).
var secretParts = []string{"PASS", "PWD", "DSN"}

// Name reports whether a variable's name says its value is secret:
// …PASSWORD, …SECRET, …TOKEN, …CREDENTIALS, …_KEY (but not …_KEY_ID, an
// identifier that is published alongside the key), …DSN, ….
func Name(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	parts := strings.Split(n, "_")
	for i, p := range parts {
		if slices.Contains(secretParts, p) {
			return true
		}
		if p == "KEY" && (i+1 == len(parts) || parts[i+1] != "ID") {
			return true
		}
	}
	return false
}

// dsnPassword finds the password of a key=value connection string
// ("host=db user=app password=s3cret").
var dsnPassword = regexp.MustCompile(`(?i)\bpassword\s*=\s*('[^']*'|\S+)`)

// Parts returns the secret parts of a variable's value, as they appear in
// it: the whole value for a secret name, else the password of a URL
// (postgres://user:pw@host/db) or of a key=value connection string;
// nothing for an ordinary variable.
func Parts(name, value string) []string {
	if value == "" {
		return nil
	}
	if Name(name) {
		return []string{value}
	}
	var parts []string
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			parts = append(parts, pw)
			// The value holds the password percent-encoded; a service may
			// print either form.
			if _, raw, _ := strings.Cut(u.User.String(), ":"); raw != pw {
				parts = append(parts, raw)
			}
		}
	}
	for _, m := range dsnPassword.FindAllStringSubmatch(value, -1) {
		if pw := strings.Trim(m[1], "'"); pw != "" {
			parts = append(parts, pw)
		}
	}
	return parts
}

// Mask returns value as msctl prints it: Masked for a secret name, the
// password replaced in a connection string, unchanged otherwise.
func Mask(name, value string) string {
	if Name(name) && value != "" {
		return Masked
	}
	for _, p := range Parts(name, value) {
		value = strings.ReplaceAll(value, p, Masked)
	}
	return value
}

// Scrubber removes the secret values of the environments it was given from
// text. The zero value is ready; a nil *Scrubber scrubs nothing.
type Scrubber struct {
	mu     sync.RWMutex
	values map[string]struct{}
	r      *strings.Replacer
}

// Add remembers the secret values of env. They stay known for the
// Scrubber's life: a line logged by an instance that had an old value is
// still scrubbed after the value changed.
func (s *Scrubber) Add(env map[string]string) {
	var fresh []string
	for k, v := range env {
		for _, p := range Parts(k, v) {
			if len(p) >= MinScrub {
				fresh = append(fresh, p)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added := false
	for _, p := range fresh {
		if _, ok := s.values[p]; !ok {
			if s.values == nil {
				s.values = map[string]struct{}{}
			}
			s.values[p] = struct{}{}
			added = true
		}
	}
	if !added {
		return
	}
	// Longest first, so that a secret containing another is replaced whole.
	vals := make([]string, 0, len(s.values))
	for v := range s.values {
		vals = append(vals, v)
	}
	slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Masked)
	}
	s.r = strings.NewReplacer(pairs...)
}

// Scrub returns text with every known secret value replaced by Masked.
func (s *Scrubber) Scrub(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	r := s.r
	s.mu.RUnlock()
	if r == nil {
		return text
	}
	return r.Replace(text)
}
