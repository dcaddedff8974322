package runtimetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/testenv"
)

// The environment files EnvWorkspace writes, and what echo must see.
const (
	sharedToken = "tok-shared-0a1b2c" // .env: dev gets it
	testToken   = "tok-test-3d4e5f"   // .env.test overrides it
)

// EnvWorkspace writes a workspace whose one service, echo with a database,
// is public on port, with a .env, a .env.test and a .env.dev, for
// CheckEnvironments. It returns the workspace directory.
func EnvWorkspace(t testing.TB, project string, port int) string {
	t.Helper()
	dir := t.TempDir()
	testenv.WriteFiles(t, dir, map[string]string{
		manifest.FileName: fmt.Sprintf("project: %s\ngateway:\n  port: %d\nservices:\n  echo:\n    path: %s\n    language: go\n"+
			"    database: true\n    public: true\n    env:\n      GREETING: from-manifest\n      FROM_MANIFEST: kept\n",
			project, port, EchoDir()),
		".env":      "API_TOKEN=" + sharedToken + "\nGREETING=from-dotenv\nSHARED=\"all ${GREETING}\"\n",
		".env.test": "# the test environment\nexport API_TOKEN=" + testToken + "\nGREETING='from env test'\n",
		".env.dev":  "GREETING=from-env-dev\n",
	})
	return dir
}

// CheckEnvironments brings EnvWorkspace's workspace up on rt with
// --env test and checks that echo runs with the files' variables in their
// precedence, that the secrets it prints (its API_TOKEN, the password of
// its DATABASE_URL) are masked in `logs` and absent from `ps --json`, and
// that a second `up --env dev` replaces it with dev's environment. It
// returns the secrets echo printed, for further looks (the dashboard). The
// caller brings the workspace down.
func CheckEnvironments(t *testing.T, cli testenv.CLI, rt string, port int) []string {
	t.Helper()
	cli.Must(t, "up", "-d", "--runtime", rt, "--env", "test")
	env := echoEnv(t, port)
	for k, want := range map[string]string{
		"API_TOKEN": testToken, "GREETING": "from env test", "SHARED": "all from-dotenv", "FROM_MANIFEST": "kept",
	} {
		if env[k] != want {
			t.Errorf("echo's %s = %q, want %q", k, env[k], want)
		}
	}
	u, err := url.Parse(env["DATABASE_URL"])
	if err != nil || u.User == nil {
		t.Fatalf("echo's DATABASE_URL %q: %v", env["DATABASE_URL"], err)
	}
	pw, _ := u.User.Password()
	if len(pw) < redact.MinScrub {
		t.Fatalf("echo's DATABASE_URL %q has no password to hide", env["DATABASE_URL"])
	}
	secrets := []string{testToken, pw}
	say(t, port, "stdout", "token="+testToken)
	say(t, port, "stderr", "connecting to "+env["DATABASE_URL"])
	testenv.Eventually(t, time.Minute, "echo's lines in msctl logs", func() error {
		out := cli.Must(t, "logs", "echo", "--raw").Stdout
		if !strings.Contains(out, "token="+redact.Masked) || !strings.Contains(out, ":"+redact.Masked+"@") {
			return fmt.Errorf("no masked token and DSN yet:\n%s", out)
		}
		return leaked(out, secrets)
	})
	if err := leaked(cli.Must(t, "ps", "--json").Stdout, secrets); err != nil {
		t.Errorf("ps --json: %v", err)
	}

	// The second up is a reconcile: dev's files replace echo's environment.
	r := cli.Must(t, "up", "-d", "--env", "dev")
	if !strings.Contains(r.Stderr, "echo") {
		t.Errorf("up --env dev while up with test changed nothing:\n%s", r.Stderr)
	}
	env = echoEnv(t, port)
	if env["GREETING"] != "from-env-dev" || env["API_TOKEN"] != sharedToken {
		t.Errorf("after up --env dev: GREETING=%q API_TOKEN=%q, want from-env-dev and .env's token", env["GREETING"], env["API_TOKEN"])
	}
	return secrets
}

// leaked names the secrets that out shows.
func leaked(out string, secrets []string) error {
	for _, s := range secrets {
		if strings.Contains(out, s) {
			return fmt.Errorf("shows the secret %q:\n%s", s, out)
		}
	}
	return nil
}

// echoEnv is what echo's /env answers through the public port.
func echoEnv(t *testing.T, port int) map[string]string {
	t.Helper()
	var env map[string]string
	testenv.Eventually(t, time.Minute, "echo's /env", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/env", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&env)
	})
	return env
}

// say has echo print msg on stream.
func say(t *testing.T, port int, stream, msg string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/say?stream=%s&msg=%s", port, stream, url.QueryEscape(msg)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
