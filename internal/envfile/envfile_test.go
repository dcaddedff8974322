package envfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/testenv"
)

const twoServices = `project: p
services:
  alpha:
    path: services/alpha
    env: {LAYER: manifest, ONLY_MANIFEST: m}
  beta:
    path: services/beta
    env: {LAYER: manifest}
`

// workspace writes the two-service workspace into a new directory.
func workspace(t *testing.T) (string, *manifest.Manifest) {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{"services/alpha/main.go": "", "services/beta/main.go": ""})
	return dir, testenv.Manifest(t, dir, twoServices)
}

// TestPrecedence writes one layer more per case: each must override every
// layer below it, for alpha only when it is alpha's own file.
func TestPrecedence(t *testing.T) {
	layers := []struct{ file, source string }{
		{".env", ".env:1"},
		{".env.test", ".env.test:1"},
		{"services/alpha/.env", "services/alpha/.env:1"},
		{"services/alpha/.env.test", "services/alpha/.env.test:1"},
	}
	for n := 0; n <= len(layers); n++ {
		dir, m := workspace(t)
		files := map[string]string{}
		for _, l := range layers[:n] {
			files[l.file] = "LAYER=" + l.file + "\n"
		}
		// Another environment's file and the other service's are no layer of alpha.
		files[".env.prod"] = "LAYER=prod\n"
		files["services/beta/.env.test"] = "LAYER=beta\n"
		testenv.WriteFiles(t, dir, files)
		res, err := Resolve(m, "test")
		if err != nil {
			t.Fatal(err)
		}
		want := Var{Name: "LAYER", Value: "manifest", Source: SourceManifest}
		if n > 0 {
			want = Var{Name: "LAYER", Value: layers[n-1].file, Source: layers[n-1].source}
		}
		if got := find(res["alpha"], "LAYER"); got != want {
			t.Errorf("with %d layers: alpha LAYER = %+v, want %+v", n, got, want)
		}
		if got := find(res["alpha"], "ONLY_MANIFEST"); got.Value != "m" {
			t.Errorf("with %d layers: ONLY_MANIFEST = %+v, want the manifest's m", n, got)
		}
		if got := find(res["beta"], "LAYER"); got.Value != "beta" {
			t.Errorf("with %d layers: beta LAYER = %+v, want its own file's", n, got)
		}
	}
}

func find(vars []Var, name string) Var {
	for _, v := range vars {
		if v.Name == name {
			return v
		}
	}
	return Var{}
}

func TestApplyAndNoFiles(t *testing.T) {
	dir, m := workspace(t)
	// A named environment without files is just msctl.yaml.
	if err := Apply(m, "staging"); err != nil {
		t.Fatal(err)
	}
	if got := m.Services["alpha"].Env["LAYER"]; got != "manifest" {
		t.Errorf("LAYER = %q, want manifest", got)
	}
	testenv.WriteFiles(t, dir, map[string]string{".env.staging": "EXTRA=1\n"})
	m, err := Load(m.Path(), "staging")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Services["beta"].Env["EXTRA"]; got != "1" {
		t.Errorf("beta EXTRA = %q, want 1 from .env.staging", got)
	}
}

func TestBadEnvironmentName(t *testing.T) {
	_, m := workspace(t)
	for _, name := range []string{"", "../x", "a/b", ".hidden", "dev staging", strings.Repeat("x", 64)} {
		if _, err := Resolve(m, name); err == nil || !strings.Contains(err.Error(), "invalid environment name") {
			t.Errorf("Resolve(%q) = %v, want invalid environment name", name, err)
		}
	}
	for _, name := range []string{"dev", "test", "staging-eu_1", "Prod"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	src := "# comment\n\nPLAIN=value # trailing comment\nexport EXPORTED=yes\n" +
		"SINGLE='lit ${PLAIN} \\n'\nDOUBLE=\"a\\nb ${PLAIN}\"\nEXPANDED=${PLAIN}-x\n" +
		"MULTI=\"line1\nline2\"\nEMPTY=\nSPACED = padded \r\nDUP=1\nDUP=2\n"
	got, err := Parse(".env", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"PLAIN", "value", 3}, {"EXPORTED", "yes", 4}, {"SINGLE", "lit ${PLAIN} \\n", 5},
		{"DOUBLE", "a\nb value", 6}, {"EXPANDED", "value-x", 7}, {"MULTI", "line1\nline2", 8},
		{"EMPTY", "", 10}, {"SPACED", "padded", 11}, {"DUP", "2", 13},
	}
	if len(got) != len(want) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMalformedLinesNameFileAndLine(t *testing.T) {
	dir, m := workspace(t)
	testenv.WriteFiles(t, dir, map[string]string{
		".env":                    "OK=1\njust some words\n1BAD=x\nGOOD=\"closed\" trailing\n",
		"services/alpha/.env.dev": "A=1\nDATABASE_URL=postgres://elsewhere\nOPEN=\"never closed\nB=2\n",
		"services/beta/.env":      "MSCTL_SECRET_CARD_VAULT=mine\n",
	})
	_, err := Resolve(m, "dev")
	var es manifest.Errors
	if !errors.As(err, &es) {
		t.Fatalf("Resolve = %v, want manifest.Errors", err)
	}
	want := []string{
		".env:2: not a NAME=value line",
		`.env:3: invalid variable name "1BAD"`,
		".env:4: text after the closing quote of GOOD",
		"services/alpha/.env.dev:2: DATABASE_URL is set by msctl",
		"services/alpha/.env.dev:3: the value of OPEN opens a quote that never closes",
		"services/beta/.env:1: MSCTL_SECRET_CARD_VAULT is set by msctl",
	}
	if len(es) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d of them", err, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(es[i].Error(), w) || es[i].Fix == "" {
			t.Errorf("error %d = %q, want it to start with %q and carry a fix", i, es[i].Error(), w)
		}
	}
	if strings.Contains(err.Error(), "just some words") {
		t.Errorf("a malformed line is quoted back (it may be a secret): %v", err)
	}
}
