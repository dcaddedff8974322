package redact

import (
	"slices"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "password": true, "PGPASSWD": true, "SSH_PASSPHRASE": true,
		"CLIENT_SECRET": true, "JWT_SECRET_FILE": true, "GITHUB_TOKEN": true, "AUTHTOKEN": true,
		"GOOGLE_APPLICATION_CREDENTIALS": true, "AWS_CREDENTIAL": true, "STRIPE_APIKEY": true,
		"API_KEY": true, "KEY": true, "SIGNING_KEY_PEM": true, "PRIVATE_KEY": true, "SENTRY_DSN": true,
		"DB_PASS": true, "PWD": true,
		"AWS_ACCESS_KEY_ID": false, "KEY_ID": false, "LOG_LEVEL": false, "DATABASE_URL": false,
		"PASSENGER_COUNT": false, "KEYBOARD_LAYOUT": false, "MONKEY": false, "HTTP_ADDR": false,
	} {
		if got := Name(name); got != want {
			t.Errorf("Name(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestPartsAndMask(t *testing.T) {
	for _, tt := range []struct {
		name, value string
		parts       []string
		masked      string
	}{
		{"API_TOKEN", "abc123", []string{"abc123"}, Masked},
		{"API_TOKEN", "", nil, ""},
		{"LOG_LEVEL", "debug", nil, "debug"},
		{"DATABASE_URL", "postgres://orders:s3cretpw@127.0.0.1:5432/orders?sslmode=disable", []string{"s3cretpw"},
			"postgres://orders:****@127.0.0.1:5432/orders?sslmode=disable"},
		{"CACHE_URL", "redis://:p%40ss@cache:6379/0", []string{"p@ss", "p%40ss"}, "redis://:****@cache:6379/0"},
		{"UPSTREAM", "http://user@host/", nil, "http://user@host/"},
		{"PG", "host=db user=app password='x y z' dbname=app", []string{"x y z"}, "host=db user=app password='****' dbname=app"},
		{"PG", "host=db password=hunter22", []string{"hunter22"}, "host=db password=****"},
		{"GATEWAY_ROUTES", "/api/v1/auth=users:public", nil, "/api/v1/auth=users:public"},
	} {
		if got := Parts(tt.name, tt.value); !slices.Equal(got, tt.parts) {
			t.Errorf("Parts(%s=%s) = %q, want %q", tt.name, tt.value, got, tt.parts)
		}
		if got := Mask(tt.name, tt.value); got != tt.masked {
			t.Errorf("Mask(%s=%s) = %q, want %q", tt.name, tt.value, got, tt.masked)
		}
	}
}

func TestScrubber(t *testing.T) {
	var nilScrubber *Scrubber
	if got := nilScrubber.Scrub("a hunter22 b"); got != "a hunter22 b" {
		t.Errorf("nil Scrubber changed text: %q", got)
	}
	var s Scrubber
	if got := s.Scrub("a hunter22 b"); got != "a hunter22 b" {
		t.Errorf("empty Scrubber changed text: %q", got)
	}
	s.Add(map[string]string{
		"API_TOKEN":    "tok-abcdef",
		"DB_PASSWORD":  "dev", // too short to scrub from text
		"DATABASE_URL": "postgres://svc:pw-0123456789@h/db",
		"LOG_LEVEL":    "debug-verbose",
	})
	s.Add(map[string]string{"API_TOKEN": "tok-abcdef-longer"}) // a changed value: both stay known
	line := `{"msg":"start","token":"tok-abcdef-longer","old":"tok-abcdef","dsn":"postgres://svc:pw-0123456789@h/db","env":"dev","level":"debug-verbose"}`
	got := s.Scrub(line)
	for _, leaked := range []string{"tok-abcdef", "pw-0123456789"} {
		if strings.Contains(got, leaked) {
			t.Errorf("Scrub left %q in %s", leaked, got)
		}
	}
	for _, kept := range []string{`"token":"****"`, `"old":"****"`, "postgres://svc:****@h/db", `"env":"dev"`, "debug-verbose"} {
		if !strings.Contains(got, kept) {
			t.Errorf("Scrub(%s) = %s, want it to contain %s", line, got, kept)
		}
	}
}
