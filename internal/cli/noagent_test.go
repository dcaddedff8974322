package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/msctl/msctl/internal/agent"
	"github.com/msctl/msctl/internal/manifest"
	"github.com/msctl/msctl/internal/runtime/local"
	"github.com/msctl/msctl/internal/state"
)

// fakeLeftovers is what a gone agent left, as the tests below set it.
type fakeLeftovers struct {
	comps   []state.Component
	orphans int
	lines   []state.LogLine
	removed int // containers remove finds

	gotQuery   state.LogQuery
	gotVolumes bool
	removeRuns int
}

func (f *fakeLeftovers) components(context.Context) ([]state.Component, int, error) {
	return f.comps, f.orphans, nil
}

func (f *fakeLeftovers) logs(_ context.Context, q state.LogQuery, fn func(state.LogLine) error) error {
	f.gotQuery = q
	if len(f.comps) == 0 {
		return agent.ErrNotRunning
	}
	for _, l := range f.lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeLeftovers) remove(_ context.Context, volumes bool) (int, error) {
	f.removeRuns++
	f.gotVolumes = volumes
	return f.removed, nil
}

// TestWithoutAgent drives ps, logs, down, dlq and top through the command line with no
// agent running and the leftovers faked: the one path they share then
// decides what each prints and how it exits, with no Docker needed.
func TestWithoutAgent(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"a", "bb"} {
		if err := os.MkdirAll(filepath.Join(dir, "services", s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, manifest.FileName)
	if err := os.WriteFile(path, []byte("project: noagent\nservices:\n  a:\n    language: go\n  bb:\n    language: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	containers := []state.Component{
		{Name: "postgres", Kind: state.KindInfra, State: state.StateHealthy, Health: "ok", Endpoint: "127.0.0.1:5432", Instances: 1},
		{Name: "a", Kind: state.KindService, State: state.StateHealthy, Health: "ok", Endpoint: "127.0.0.1:9001", Instances: 1},
	}
	lines := []state.LogLine{{Service: "a", Text: "started"}, {Service: "bb", Text: `{"level":"WARN","msg":"ready","port":9}`}}
	tests := []struct {
		name       string
		args       []string
		left       fakeLeftovers
		code       int
		stdout     []string // substrings, in order
		stderr     []string
		noStdout   bool
		stdoutIs   string // when set, all of stdout
		noLine     string // what stdout must not hold
		wantRemove bool
		wantQuery  state.LogQuery
	}{
		{
			name: "ps, nothing left", args: []string{"ps"},
			stderr: []string{"nothing is up in this workspace (start it with msctl up -d)\n"}, noStdout: true,
		},
		{name: "ps --json, nothing left", args: []string{"ps", "--json"}, stdout: []string{"[]\n"}},
		{
			name: "ps, containers left", args: []string{"ps"}, left: fakeLeftovers{comps: containers},
			stdout: []string{"NAME", "postgres  infra", "healthy", "127.0.0.1:5432", "a         service"},
		},
		{
			name: "ps, processes left", args: []string{"ps"},
			left:   fakeLeftovers{orphans: 1, comps: orphanComponents([]local.Orphan{{PID: 4242, Name: "a", Instance: "a-1", Endpoint: "127.0.0.1:9001"}})},
			stdout: []string{"a     service  orphaned  unknown  127.0.0.1:9001  4242"},
			stderr: []string{"no agent runs this workspace, but 1 processes it started still do: msctl up reaps them; msctl down stops them"},
		},
		{
			name: "ps --json, containers left", args: []string{"ps", "--json"}, left: fakeLeftovers{comps: containers},
			stdout: []string{`"name": "postgres"`, `"name": "a"`},
		},
		{
			name: "logs, nothing left", args: []string{"logs"}, code: 1,
			stderr: []string{"msctl: nothing is up in this workspace (start it with msctl up -d)\n"}, noStdout: true,
		},
		{
			name: "logs, containers left", args: []string{"logs", "--grep", "r", "--since", "5m", "bb"},
			left:      fakeLeftovers{comps: containers, lines: lines},
			stdout:    []string{"       a  started\n", " WARN  bb ready port=9\n"},
			wantQuery: state.LogQuery{Services: []string{"bb"}, Grep: regexp.MustCompile("r"), Since: state.Ago(5 * time.Minute)},
		},
		{
			name: "logs --level warn --raw, containers left", args: []string{"logs", "--level", "warn", "--raw"},
			left:     fakeLeftovers{comps: containers, lines: lines},
			stdoutIs: "{\"level\":\"WARN\",\"msg\":\"ready\",\"port\":9}\n", // the info line filtered out
		},
		{
			name: "logs --json --level warn, containers left", args: []string{"logs", "--json", "--level", "warn"},
			left:   fakeLeftovers{comps: containers, lines: lines},
			stdout: []string{`"service":"bb"`}, noLine: `"service":"a"`,
		},
		{
			name: "logs --json, containers left", args: []string{"logs", "--json"},
			left:   fakeLeftovers{comps: containers, lines: lines},
			stdout: []string{`{"time":"0001-01-01T00:00:00Z","service":"a","stream":"","text":"started"}` + "\n", `"service":"bb"`},
		},
		{
			name: "logs, unknown service", args: []string{"logs", "c"}, code: 2,
			stderr: []string{`msctl: unknown service "c" (services: a, bb)`},
		},
		{
			name: "dlq ls, no agent", args: []string{"dlq", "ls"}, code: 1,
			stderr: []string{"msctl: nothing is up in this workspace (start it with msctl up -d)\n"}, noStdout: true,
		},
		{
			name: "dlq ls --json, no agent", args: []string{"dlq", "ls", "--json"}, code: 1,
			stderr: []string{"msctl: nothing is up in this workspace"}, noStdout: true,
		},
		{name: "dlq show, no agent", args: []string{"dlq", "show", "3"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace"}},
		{name: "dlq replay, no agent", args: []string{"dlq", "replay", "1", "2"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace"}},
		{name: "dlq drop --all, no agent", args: []string{"dlq", "drop", "--all", "--subject", "payments.cmd.>"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace"}},
		{
			name: "dlq show, bad id", args: []string{"dlq", "show", "abc"}, code: 2,
			stderr: []string{`msctl: bad message id "abc": ids are the numbers in the ID column of msctl dlq ls`, "Run 'msctl --help' for usage."},
		},
		{name: "dlq replay, nothing named", args: []string{"dlq", "replay"}, code: 2, stderr: []string{"msctl: name the messages to replay: their ids (msctl dlq ls) or --all"}},
		{name: "dlq drop, ids and --all", args: []string{"dlq", "drop", "1", "--all"}, code: 2, stderr: []string{"msctl: give message ids or --all, not both"}},
		{
			name: "dlq replay, --subject with ids", args: []string{"dlq", "replay", "4", "--subject", "orders.evt.created"}, code: 2,
			stderr: []string{"msctl: --subject narrows --all: use msctl dlq replay --all --subject orders.evt.created"},
		},
		{name: "dlq drop, id 0", args: []string{"dlq", "drop", "0"}, code: 2, stderr: []string{`msctl: bad message id "0"`}},
		{name: "top, no agent", args: []string{"top"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace (start it with msctl up -d)\n"}, noStdout: true},
		{name: "top --json, no agent", args: []string{"top", "--json"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace"}, noStdout: true},
		{name: "top --watch, no agent", args: []string{"top", "--watch"}, code: 1, stderr: []string{"msctl: nothing is up in this workspace"}, noStdout: true},
		{
			name: "down, nothing left", args: []string{"down"}, wantRemove: true,
			stderr: []string{"nothing is up\n"}, noStdout: true,
		},
		{
			name: "down --volumes, containers left", args: []string{"down", "--volumes"}, left: fakeLeftovers{removed: 3}, wantRemove: true,
			stderr: []string{"no agent was running; removed the 3 containers it left in ", "removed the data\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			left := tt.left
			build := func(opts *rootOptions) *cobra.Command {
				opts.connect = func(string) (*agent.Client, error) { return nil, agent.ErrNotRunning }
				opts.leftovers = func(*manifest.Manifest) leftovers { return &left }
				return newRootCmd(opts)
			}
			var stdout, stderr bytes.Buffer
			if code := run(append([]string{"--file", path}, tt.args...), &stdout, &stderr, build); code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			inOrder(t, "stdout", stdout.String(), tt.stdout)
			inOrder(t, "stderr", stderr.String(), tt.stderr)
			if tt.noLine != "" && strings.Contains(stdout.String(), tt.noLine) {
				t.Errorf("stdout holds %q:\n%s", tt.noLine, stdout.String())
			}
			if tt.stdoutIs != "" && stdout.String() != tt.stdoutIs {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.stdoutIs)
			}
			if tt.noStdout && stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if (left.removeRuns > 0) != tt.wantRemove {
				t.Errorf("remove ran %d times, want it to run: %v", left.removeRuns, tt.wantRemove)
			}
			if tt.wantRemove && left.gotVolumes != strings.Contains(strings.Join(tt.args, " "), "--volumes") {
				t.Errorf("remove(volumes=%v) for %v", left.gotVolumes, tt.args)
			}
			if tt.wantQuery.Grep != nil && !equalQuery(left.gotQuery, tt.wantQuery) {
				t.Errorf("logs query = %+v, want %+v", left.gotQuery, tt.wantQuery)
			}
		})
	}
}

// inOrder fails unless every one of want occurs in got, in that order.
func inOrder(t *testing.T, what, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s lacks %q (in order):\n%s", what, w, got)
			return
		}
		rest = rest[i+len(w):]
	}
}

func equalQuery(a, b state.LogQuery) bool {
	// Since is taken from the clock when the command runs, after want's.
	return strings.Join(a.Services, ",") == strings.Join(b.Services, ",") && a.Grep.String() == b.Grep.String() &&
		!a.Since.Before(b.Since) && a.Since.Sub(b.Since) < time.Minute && a.Follow == b.Follow
}
