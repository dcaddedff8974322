package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/dash"
	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/runtime/runtimetest"
	"github.com/msctl/msctl/internal/state"
	"github.com/msctl/msctl/internal/testenv"
)

// TestEnvironmentsLocal: `up --env test` on the local runtime gives the
// service the .env files' variables, secrets stay masked in logs, ps and
// the dashboard's frames, and `up --env dev` switches environments.
func TestEnvironmentsLocal(t *testing.T) {
	testenv.SkipShort(t, "brings a workspace up")
	port := testenv.FreePort(t)
	cli := testenv.CLI{Bin: shop.Bin, Dir: runtimetest.EnvWorkspace(t, "envs", port)}
	cli.DownAtCleanup(t)
	secrets := runtimetest.CheckEnvironments(t, cli, "local", port)

	c, err := agent.Connect(cli.Dir)
	if err != nil {
		t.Fatal(err)
	}
	frames := dashboardFrames(t, c)
	if !strings.Contains(frames, "token="+redact.Masked) {
		t.Errorf("the dashboard's logs panel never showed echo's masked token line")
	}
	for _, s := range secrets {
		if strings.Contains(frames, s) {
			t.Errorf("a dashboard frame shows the secret %q", s)
		}
	}
}

// dashboardFrames runs the dashboard on c without a terminal, switches to
// its logs panel and returns everything it drew.
func dashboardFrames(t *testing.T, c *agent.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out testenv.Buffer
	p := tea.NewProgram(dash.New(dashSource{c}, dash.Options{Interval: 250 * time.Millisecond}),
		tea.WithInput(nil), tea.WithOutput(&out), tea.WithoutSignalHandler(), tea.WithContext(ctx))
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	p.Send(tea.WindowSizeMsg{Width: 200, Height: 50})
	p.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("5")})
	testenv.Until(t, 15*time.Second, "the logs panel shows echo's lines", func() bool {
		return strings.Contains(out.String(), "token="+redact.Masked)
	})
	p.Quit()
	<-done
	return out.String()
}

// dashSource is the agent client as the dashboard reads it (msctl dash
// adapts it the same way).
type dashSource struct{ *agent.Client }

func (s dashSource) FollowLogs(ctx context.Context, since time.Duration, fn func(state.LogLine) error) error {
	return s.Logs(ctx, state.LogQuery{Since: state.Ago(since), Follow: true}, fn)
}
