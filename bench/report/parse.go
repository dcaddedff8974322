package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

type status int

const (
	measured status = iota
	skipped
	failed
)

// outcome is what one benchmark (or sub-benchmark) came to.
type outcome struct {
	status  status
	metrics map[string]float64 // unit → value, when measured
	reason  string             // when skipped or failed
}

var (
	// resultLine is "BenchmarkName-2 <tab> N <tab> value unit <tab> ...".
	resultLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(\S.*)$`)
	// orphanLine is the "N <tab> value unit ..." part of a result whose name
	// was printed before the benchmark wrote lines of its own.
	orphanLine = regexp.MustCompile(`^\s+(\d+)\s+(\S.*)$`)
	verdict    = regexp.MustCompile(`^\s*--- (SKIP|FAIL|BENCH): (Benchmark\S+)`)
	procSuffix = regexp.MustCompile(`-\d+$`)
	// logPrefix is the file:line a b.Log line starts with.
	logPrefix = regexp.MustCompile(`^\s+\S+\.go:\d+: `)
)

// parse reads `go test -bench` output into outcomes by benchmark name (the
// -GOMAXPROCS suffix dropped). A result line whose metrics are not value/unit
// pairs is an error: the table must not silently miss a number.
func parse(out string) (map[string]outcome, error) {
	res := map[string]outcome{}
	lines := strings.Split(out, "\n")
	pending := "" // a name printed without its numbers yet
	for i, line := range lines {
		if m := verdict.FindStringSubmatch(line); m != nil {
			pending = ""
			name := procSuffix.ReplaceAllString(m[2], "")
			switch m[1] {
			case "SKIP":
				res[name] = outcome{status: skipped, reason: reasonAfter(lines[i+1:])}
			case "FAIL":
				res[name] = outcome{status: failed, reason: reasonAfter(lines[i+1:])}
			}
			continue
		}
		name, values := "", ""
		if m := resultLine.FindStringSubmatch(line); m != nil {
			name, values = m[1], m[3]
		} else if strings.HasPrefix(line, "Benchmark") {
			pending = strings.Fields(line)[0]
			continue
		} else if m := orphanLine.FindStringSubmatch(line); m != nil && pending != "" {
			name, values = pending, m[2]
		} else {
			continue
		}
		pending = ""
		metrics, err := pairs(values)
		if err != nil {
			return nil, fmt.Errorf("result of %s %q: %w", name, line, err)
		}
		res[procSuffix.ReplaceAllString(name, "")] = outcome{status: measured, metrics: metrics}
	}
	return res, nil
}

// pairs reads "value unit value unit ...".
func pairs(s string) (map[string]float64, error) {
	fields := strings.Fields(s)
	if len(fields)%2 != 0 {
		return nil, fmt.Errorf("odd number of fields")
	}
	metrics := map[string]float64{}
	for j := 0; j < len(fields); j += 2 {
		v, err := strconv.ParseFloat(fields[j], 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: %w", fields[j], err)
		}
		metrics[fields[j+1]] = v
	}
	return metrics, nil
}

// reasonAfter is the first logged line that follows a SKIP or FAIL verdict,
// without its file:line prefix.
func reasonAfter(lines []string) string {
	for _, l := range lines {
		if !logPrefix.MatchString(l) {
			break
		}
		if r := strings.TrimSpace(logPrefix.ReplaceAllString(l, "")); r != "" {
			return r
		}
	}
	return "no reason given"
}
