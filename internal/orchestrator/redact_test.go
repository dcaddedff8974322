package orchestrator

import (
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/state"
)

// TestSecretsAreScrubbed: a secret of a service's environment that the
// service prints is masked in the logs and in the error that quotes them.
func TestSecretsAreScrubbed(t *testing.T) {
	const token = "hello from inventory" // what the fake instance prints at start
	m := loadShop(t)
	m.Services["inventory"].Env["API_TOKEN"] = token
	m.Services["users"].Env["DB_PASSWORD"] = "users-pw-42"
	f := newFake()
	f.crashStart["inventory"] = true
	o := newOrchFor(t, f, m, nil)
	err := o.Up(t.Context(), UpOptions{Services: []string{"users", "inventory"}})
	if err == nil {
		t.Fatal("up succeeded with a crashing service")
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), redact.Masked) {
		t.Errorf("error quotes the secret or no mask: %v", err)
	}
	if scrubbed := o.ScrubError(err); scrubbed != err && !strings.Contains(scrubbed.Error(), redact.Masked) {
		t.Errorf("ScrubError = %v", scrubbed)
	}
	if u := f.current("users"); u != nil {
		u.spec.Output("stdout", `{"msg":"connecting","password":"users-pw-42"}`)
	}
	var lines []string
	for l := range o.Logs(t.Context(), state.LogQuery{}) {
		lines = append(lines, l.Text)
	}
	all := strings.Join(lines, "\n")
	for _, leaked := range []string{token, "users-pw-42"} {
		if strings.Contains(all, leaked) {
			t.Errorf("logs show %q:\n%s", leaked, all)
		}
	}
	if !strings.Contains(all, `"password":"****"`) {
		t.Errorf("logs lack the masked password line:\n%s", all)
	}
	if got := o.Scrub("pw users-pw-42"); got != "pw ****" {
		t.Errorf("Scrub = %q", got)
	}
}
