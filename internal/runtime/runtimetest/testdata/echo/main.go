// Command echo is the tiny service the runtime conformance suite runs: it
// serves /healthz and /readyz, shows its environment, prints to stdout and
// stderr, and exits or misbehaves on demand.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := os.Getenv("HTTP_ADDR")
	if addr == "" {
		fmt.Fprintln(os.Stderr, "HTTP_ADDR is not set")
		os.Exit(2)
	}
	// ECHO_IGNORE_TERM makes the service ignore SIGTERM, so a stop must
	// escalate to a kill.
	ignoreTerm := os.Getenv("ECHO_IGNORE_TERM") == "1"
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	var child *exec.Cmd
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_ = json.NewEncoder(w).Encode(env)
	})
	mux.HandleFunc("/say", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stream") == "stderr" {
			fmt.Fprintln(os.Stderr, r.URL.Query().Get("msg"))
		} else {
			fmt.Println(r.URL.Query().Get("msg"))
		}
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(http.StatusAccepted)
		go func() { time.Sleep(20 * time.Millisecond); os.Exit(code) }()
	})
	// /spawn starts a long-lived child, to check that stopping the service
	// stops what it started too. It answers with the child's pid.
	mux.HandleFunc("/spawn", func(w http.ResponseWriter, _ *http.Request) {
		child = exec.Command("sleep", "300")
		if err := child.Start(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, child.Process.Pid)
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
	}()
	fmt.Println("echo listening on", addr)
	fmt.Fprintln(os.Stderr, "echo ready")
	for sig := range sigs {
		if ignoreTerm {
			fmt.Println("ignoring", sig)
			continue
		}
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	fmt.Println("echo stopped")
}
