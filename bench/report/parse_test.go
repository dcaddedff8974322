package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want map[string]outcome
	}{
		{
			name: "results with custom metrics and sub-benchmarks",
			out: "goos: linux\npkg: x\n" +
				"BenchmarkGatewayVsNginx-2   \t       1\t11740163343 ns/op\t        34.57 added-p99-ms\t         0.2489 gw/nginx-ratio\n" +
				"BenchmarkDashIdle/panel3-2  \t       1\t  10641104 ns/op\t   2326528 bytes-retained\t  179128 B/op\n" +
				"--- BENCH: BenchmarkGatewayVsNginx-2\n    gateway_nginx_test.go:99: direct 20000 requests\nPASS\n",
			want: map[string]outcome{
				"BenchmarkGatewayVsNginx":  {metrics: map[string]float64{"ns/op": 11740163343, "added-p99-ms": 34.57, "gw/nginx-ratio": 0.2489}},
				"BenchmarkDashIdle/panel3": {metrics: map[string]float64{"ns/op": 10641104, "bytes-retained": 2326528, "B/op": 179128}},
			},
		},
		{
			name: "the benchmark wrote lines between its name and its numbers",
			out: "BenchmarkSaga-2   \t2026/11/21 11:53:55 INFO started\n" +
				"2026/11/21 11:53:56 INFO more\n" +
				"       1\t  5 ns/op\t 612.5 orders/s\n",
			want: map[string]outcome{"BenchmarkSaga": {metrics: map[string]float64{"ns/op": 5, "orders/s": 612.5}}},
		},
		{
			name: "skip and fail keep their first reason",
			out: "--- SKIP: BenchmarkWarmUp\n    bench_test.go:35: docker-compose not installed\n" +
				"--- FAIL: BenchmarkDashIdleCPU/live\n    dash_cpu_test.go:205: msctl up -d: exit status 1\n        more detail\n" +
				"--- FAIL: BenchmarkDashIdleCPU\nFAIL\n",
			want: map[string]outcome{
				"BenchmarkWarmUp":           {status: skipped, reason: "docker-compose not installed"},
				"BenchmarkDashIdleCPU/live": {status: failed, reason: "msctl up -d: exit status 1"},
				"BenchmarkDashIdleCPU":      {status: failed, reason: "no reason given"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(tt.out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseRejectsGarbledResults(t *testing.T) {
	for _, out := range []string{
		"BenchmarkX-2 \t 1\t 12 ns/op\t 3\n",
		"BenchmarkX-2 \t 1\t twelve ns/op\n",
	} {
		if _, err := parse(out); err == nil || !strings.Contains(err.Error(), "BenchmarkX") {
			t.Errorf("parse(%q) = %v, want an error naming the benchmark", out, err)
		}
	}
}

func TestTable(t *testing.T) {
	results := map[string]outcome{
		"BenchmarkGatewayVsNginx": {metrics: map[string]float64{"gw/nginx-ratio": 0.95, "gateway-rps": 9500, "nginx-rps": 10000,
			"added-p99-ms-1conn": 1.5, "added-p99-ms": 0.5}},
		"BenchmarkSaga":         {status: failed, reason: "boom"},
		"BenchmarkWarmUp":       {status: skipped, reason: "no docker"},
		"BenchmarkKubernetesUp": {metrics: map[string]float64{"msctl/kubectl": 1.35, "msctl-s/op": 27, "kubectl-s/op": 20}},
	}
	rows, bad := table(results, map[string]bool{"BenchmarkLocalUp": true})
	if !bad {
		t.Error("a failed benchmark must make the report fail")
	}
	byName := map[string]row{}
	for _, r := range rows {
		byName[r.target] = r
	}
	tests := []struct{ target, measured, threshold, ok string }{
		{"gateway throughput / nginx", "0.95× (gateway-rps 9500, nginx-rps 10000)", "≥ 0.90×", "yes"},
		{"gateway added p99, 1 connection (the target)", "1.50 ms", "≤ 1.00 ms", "NO"},
		{"gateway added p99, 32 connections", "0.50 ms", "informational: queueing, not proxy cost", "info"},
		{"saga throughput, end to end", "FAILED: boom", "≥ 500.0 orders/s", "FAIL"},
		{"warm up, docker, whole shop: msctl / compose", "not measured (no docker)", "≤ 0.50×", "-"},
		{"up with nothing changed, docker, whole shop", "not measured (no docker)", "≤ 1000.0 ms", "-"},
		{"warm up, kubernetes: msctl / kubectl apply -k + rollout status", "1.35× (msctl-s/op 27, kubectl-s/op 20)", "≤ 1.20×", "NO"},
		{"warm up, local: to all-healthy", "not measured (BenchmarkLocalUp is in no package)", "≤ 3.00 s", "-"},
		{"dashboard idle CPU, live workspace", "not measured (BenchmarkDashIdleCPU/live did not run)", "≤ 1.00 %", "-"},
	}
	for _, tt := range tests {
		got := byName[tt.target]
		want := row{tt.target, tt.measured, tt.threshold, tt.ok}
		if got != want {
			t.Errorf("row %q:\n got %+v\nwant %+v", tt.target, got, want)
		}
	}
}
