package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAPISendsJSONWithBearer checks what every e2e test relies on: a body
// goes as JSON with its content type, a token as a bearer, extra headers
// win, and only a 2xx answer is decoded.
func TestAPISendsJSONWithBearer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := http.StatusOK
		if r.URL.Path == "/missing" {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"method": r.Method, "path": r.URL.Path, "body": string(body),
			"auth": r.Header.Get("Authorization"), "type": r.Header.Get("Content-Type"), "user": r.Header.Get("X-User-ID"),
		})
	}))
	defer srv.Close()
	api := &API{T: t, Base: srv.URL}

	var got map[string]string
	if code := api.Do("POST", "/orders", "tok", map[string]int{"n": 1}, &got); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	want := map[string]string{"method": "POST", "path": "/orders", "body": `{"n":1}`, "auth": "Bearer tok", "type": "application/json", "user": ""}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	got = nil
	r := api.Call("GET", "/plain", "", http.Header{"x-user-id": {"alice"}, "Authorization": {"raw"}}, nil)
	if r.Decode(t, &got); got["auth"] != "raw" || got["user"] != "alice" || got["type"] != "" {
		t.Errorf("GET with headers sent %v, want the raw Authorization, X-User-ID alice and no content type", got)
	}

	got = nil
	if code := api.Do("GET", "/missing", "", nil, &got); code != http.StatusNotFound || got != nil {
		t.Errorf("404 answer: status %d, decoded %v; want 404 and nothing decoded", code, got)
	}
}

func TestExecReportsExitAndOutput(t *testing.T) {
	r := Exec(t, time.Minute, t.TempDir(), "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" || strings.Join(r.Args, " ") != "sh -c echo out; echo err >&2; exit 3" {
		t.Errorf("result = %+v", r)
	}
	if r := Exec(t, 100*time.Millisecond, "", "sleep", "10"); r.Code != -1 {
		t.Errorf("a command past its timeout: exit %d, want -1 (killed)", r.Code)
	}
	cli := CLI{Bin: "/bin/echo", Dir: t.TempDir()}
	if r := cli.Must(t, "ps", "--json"); r.Stdout != "ps --json\n" {
		t.Errorf("CLI ran %q", r.Stdout)
	}
}

func TestProcStopsItsGroup(t *testing.T) {
	p := StartProc(t, "sh", exec.Command("sh", "-c", "echo started; sleep 30 & wait"), syscall.SIGTERM)
	Until(t, 5*time.Second, "output kept", func() bool { return p.Output() == "started\n" })
	if p.Exited() {
		t.Fatal("exited early")
	}
	p.Stop(syscall.SIGTERM)
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	// The sleep shared the group: the signal reached it too.
	if err := syscall.Kill(-p.PGID(), 0); err == nil {
		Until(t, 5*time.Second, "process group gone", func() bool { return syscall.Kill(-p.PGID(), 0) != nil })
	}
}
