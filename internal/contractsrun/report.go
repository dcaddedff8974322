package contractsrun

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Stages a failure can come from.
const (
	StageConsumer = "consumer"
	StageProvider = "provider"
)

// Pair statuses.
const (
	StatusPassed      = "passed"
	StatusFailed      = "failed"
	StatusNotVerified = "not verified"
)

// Report is the outcome of one `msctl contracts verify`.
type Report struct {
	OK        bool      `json:"ok"`
	StartedAt time.Time `json:"started_at"`
	Duration  string    `json:"duration"`
	// Consumer and Provider are the filters the run used ("" for all).
	Consumer      string       `json:"consumer,omitempty"`
	Provider      string       `json:"provider,omitempty"`
	PactDir       string       `json:"pact_dir"`
	ConsumerTests []TestResult `json:"consumer_tests"`
	Pairs         []Pair       `json:"pairs"`
	Failures      []Failure    `json:"failures"`
}

// TestResult is one consumer test.
type TestResult struct {
	Name     string `json:"name"`
	Consumer string `json:"consumer"`
	Passed   bool   `json:"passed"`
}

// Pair is one pact: a consumer's expectations of a provider and how the
// provider's verification went.
type Pair struct {
	Consumer     string `json:"consumer"`
	Provider     string `json:"provider"`
	Kind         string `json:"kind"` // http, message or mixed
	Interactions int    `json:"interactions"`
	Verified     int    `json:"verified"`
	Failed       int    `json:"failed"`
	Status       string `json:"status"`
}

// Failure names what failed and why.
type Failure struct {
	Stage       string `json:"stage"`
	Consumer    string `json:"consumer,omitempty"`
	Provider    string `json:"provider,omitempty"`
	Interaction string `json:"interaction,omitempty"`
	Test        string `json:"test,omitempty"`
	Message     string `json:"message"`
}

// WriteMatrix prints the consumer × provider matrix and then every failure.
func (r *Report) WriteMatrix(w io.Writer) error {
	var consumers, providers []string
	cells := map[[2]string]Pair{}
	for _, p := range r.Pairs {
		consumers = appendNew(consumers, p.Consumer)
		providers = appendNew(providers, p.Provider)
		cells[[2]string{p.Consumer, p.Provider}] = p
	}
	for _, t := range r.ConsumerTests {
		consumers = appendNew(consumers, t.Consumer)
	}
	sort.Strings(consumers)
	sort.Strings(providers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "CONSUMER \\ PROVIDER")
	for _, p := range providers {
		fmt.Fprint(tw, "\t"+p)
	}
	fmt.Fprintln(tw)
	for _, c := range consumers {
		fmt.Fprint(tw, c)
		for _, p := range providers {
			fmt.Fprint(tw, "\t"+cell(cells[[2]string{c, p}]))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write matrix: %w", err)
	}
	interactions, verified := 0, 0
	for _, p := range r.Pairs {
		interactions += p.Interactions
		verified += p.Verified
	}
	fmt.Fprintf(w, "\n%d pacts, %d interactions, %d verified, %d failures (%s)\n", len(r.Pairs), interactions, verified, len(r.Failures), r.Duration)
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAIL %s\n", f.String())
	}
	return nil
}

func (f Failure) String() string {
	switch {
	case f.Interaction != "":
		return fmt.Sprintf("%s → %s: %q: %s", f.Consumer, f.Provider, f.Interaction, f.Message)
	case f.Stage == StageConsumer && f.Test != "":
		return fmt.Sprintf("consumer %s: %s: %s", f.Consumer, f.Test, f.Message)
	case f.Provider != "":
		return fmt.Sprintf("provider %s: %s", f.Provider, f.Message)
	}
	return f.Message
}

func cell(p Pair) string {
	if p.Consumer == "" {
		return "-"
	}
	switch p.Status {
	case StatusPassed:
		return fmt.Sprintf("%s %d ok", p.Kind, p.Interactions)
	case StatusFailed:
		return fmt.Sprintf("%s %d/%d FAIL", p.Kind, p.Failed, p.Interactions)
	}
	return fmt.Sprintf("%s %d unverified", p.Kind, p.Interactions)
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *struct{}     `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML: a suite for the consumer tests
// and one per pact with a case per interaction. pacts supplies the
// interaction names.
func (r *Report) WriteJUnit(w io.Writer, pacts []Pact) error {
	out := junitSuites{Name: "contracts"}
	cs := junitSuite{Name: "consumer tests"}
	for _, t := range r.ConsumerTests {
		c := junitCase{Classname: "consumer." + t.Consumer, Name: t.Name}
		if !t.Passed {
			msg := r.failureMessage(func(f Failure) bool { return f.Stage == StageConsumer && f.Test == t.Name })
			c.Failure = &junitFailure{Message: "consumer test failed", Text: msg}
			cs.Failures++
		}
		cs.Cases = append(cs.Cases, c)
	}
	cs.Tests = len(cs.Cases)
	out.Suites = append(out.Suites, cs)
	for _, p := range pacts {
		var status string
		for _, pr := range r.Pairs {
			if pr.Consumer == p.Consumer && pr.Provider == p.Provider {
				status = pr.Status
			}
		}
		s := junitSuite{Name: p.Consumer + " → " + p.Provider}
		for _, in := range p.Interactions {
			c := junitCase{Classname: p.Consumer + "." + p.Provider, Name: in.Description}
			msg := r.failureMessage(func(f Failure) bool {
				return f.Consumer == p.Consumer && f.Provider == p.Provider && f.Interaction == in.Description
			})
			switch {
			case msg != "":
				c.Failure = &junitFailure{Message: "verification failed", Text: msg}
				s.Failures++
			case status == StatusNotVerified:
				c.Skipped = &struct{}{}
			}
			s.Cases = append(s.Cases, c)
		}
		s.Tests = len(s.Cases)
		out.Suites = append(out.Suites, s)
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func (r *Report) failureMessage(match func(Failure) bool) string {
	var msgs []string
	for _, f := range r.Failures {
		if match(f) {
			msgs = append(msgs, f.Message)
		}
	}
	return strings.Join(msgs, "\n")
}

// ResultsPath is where the last report is kept, relative to the workspace.
const ResultsPath = ".msctl/contracts/results.json"

// Save writes the report under dir (the workspace root) for can-i-deploy.
func (r *Report) Save(dir string) error {
	path := filepath.Join(dir, ResultsPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("save contract results: %w", err)
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save contract results: %w", err)
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("save contract results: %w", err)
	}
	return nil
}

// ErrNoResults means verify has not stored results yet.
var ErrNoResults = errors.New("no contract results")

// Load reads the report Save wrote under dir.
func Load(dir string) (*Report, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ResultsPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoResults, filepath.Join(dir, ResultsPath))
	}
	if err != nil {
		return nil, fmt.Errorf("load contract results: %w", err)
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("load contract results %s: %w", filepath.Join(dir, ResultsPath), err)
	}
	return &r, nil
}

// CanIDeploy decides from the last results whether service may be deployed:
// every pact it is part of, as consumer or provider, must have been verified
// and passed, and its consumer tests must have passed. The reasons say why,
// one per pact or test.
func (r *Report) CanIDeploy(service string) (bool, []string) {
	ok, seen := true, false
	var reasons []string
	for _, t := range r.ConsumerTests {
		if t.Consumer == service && !t.Passed {
			ok, seen = false, true
			reasons = append(reasons, fmt.Sprintf("consumer test %s failed", t.Name))
		}
	}
	for _, p := range r.Pairs {
		if p.Consumer != service && p.Provider != service {
			continue
		}
		seen = true
		switch p.Status {
		case StatusPassed:
			reasons = append(reasons, fmt.Sprintf("%s → %s: %d %s interactions verified", p.Consumer, p.Provider, p.Interactions, p.Kind))
		case StatusFailed:
			ok = false
			var which []string
			for _, f := range r.Failures {
				if f.Consumer == p.Consumer && f.Provider == p.Provider && f.Interaction != "" {
					which = append(which, fmt.Sprintf("%q (%s)", f.Interaction, f.Message))
				}
			}
			reasons = append(reasons, fmt.Sprintf("%s → %s: %d of %d interactions fail: %s", p.Consumer, p.Provider, p.Failed, p.Interactions, strings.Join(which, "; ")))
		default:
			ok = false
			reasons = append(reasons, fmt.Sprintf("%s → %s: not verified in the last run (run msctl contracts verify without filters)", p.Consumer, p.Provider))
		}
	}
	if !seen {
		return false, []string{fmt.Sprintf("no pact names %s in the last results (run msctl contracts verify)", service)}
	}
	return ok, reasons
}
