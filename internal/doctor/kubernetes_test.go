package doctor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckKubernetes(t *testing.T) {
	for _, tt := range []struct {
		name       string
		info       KubeInfo
		err        error
		ok         bool
		detail     string
		fixMention string
	}{
		{"answers", KubeInfo{Context: "kind-dev", Server: "https://127.0.0.1:6443", Version: "v1.37.2"}, nil, true,
			"context kind-dev, API server https://127.0.0.1:6443 answers (Kubernetes v1.37.2)", ""},
		{"no kubeconfig", KubeInfo{}, ErrNoKubeconfig, false, "no kubeconfig", "KUBECONFIG"},
		{"unreadable", KubeInfo{}, errors.New("read kubeconfig: bad yaml"), false, "bad yaml", "kubectl config view"},
		{"unreachable", KubeInfo{Context: "prod", Server: "https://10.0.0.1:6443"}, errors.New("no answer: i/o timeout"), false,
			"context prod: API server https://10.0.0.1:6443: no answer", "start the cluster"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := Env{Kubernetes: func(context.Context) (KubeInfo, error) { return tt.info, tt.err }}
			r := checkKubernetes(context.Background(), env)
			if r.Name != CheckKubernetes || r.OK != tt.ok || !strings.Contains(r.Detail, tt.detail) || !strings.Contains(r.Fix, tt.fixMention) {
				t.Errorf("got %+v, want ok=%v, detail containing %q, fix containing %q", r, tt.ok, tt.detail, tt.fixMention)
			}
			if !r.OK && r.Fix == "" {
				t.Error("a failure without a fix")
			}
		})
	}
}

// TestProbeKubernetes runs the real probe against kubeconfigs written
// here: none at all, and one whose API server does not answer.
func TestProbeKubernetes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing"))
	if _, err := probeKubernetes(context.Background()); !errors.Is(err, ErrNoKubeconfig) {
		t.Errorf("without a kubeconfig: err = %v, want ErrNoKubeconfig", err)
	}

	// A port that was free a moment ago: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	kc := filepath.Join(dir, "config")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
current-context: dead
contexts:
- name: dead
  context: {cluster: dead, user: dead}
clusters:
- name: dead
  cluster: {server: "https://`+addr+`"}
users:
- name: dead
  user: {token: x}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	start := time.Now()
	info, err := probeKubernetes(context.Background())
	if err == nil || info.Context != "dead" || info.Server != "https://"+addr {
		t.Errorf("dead cluster: info %+v, err %v; want its context and server with an error", info, err)
	}
	if d := time.Since(start); d > 2*kubeTimeout {
		t.Errorf("probe took %s, want an answer within seconds", d)
	}
}
