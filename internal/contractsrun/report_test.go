package contractsrun

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePact(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPactsAndCheckStates(t *testing.T) {
	dir := t.TempDir()
	writePact(t, dir, "gateway-users.json", `{"consumer":{"name":"gateway"},"provider":{"name":"users"},"interactions":[
		{"type":"Synchronous/HTTP","description":"a login","providerStates":[{"name":"alice exists"}]},
		{"type":"Synchronous/HTTP","description":"a login","providerStates":[{"name":"alice exists"}]},
		{"type":"Synchronous/HTTP","description":"a signup"}]}`)
	writePact(t, dir, "inventory-orders.json", `{"consumer":{"name":"inventory"},"provider":{"name":"orders"},"interactions":[
		{"type":"Asynchronous/Messages","description":"a reserve command"}]}`)
	pacts, err := LoadPacts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(pacts) != 2 || pacts[0].Consumer != "gateway" || len(pacts[0].Interactions) != 2 {
		t.Fatalf("pacts = %+v (the duplicate login must count once)", pacts)
	}
	if pacts[0].Kind() != "http" || pacts[1].Kind() != "message" {
		t.Errorf("kinds %s, %s", pacts[0].Kind(), pacts[1].Kind())
	}
	users := PactsFor(pacts, "users")
	if err := CheckStates(users, func(s string) bool { return s == "alice exists" }); err != nil {
		t.Errorf("handled states rejected: %v", err)
	}
	err = CheckStates(users, func(string) bool { return false })
	if err == nil || !strings.Contains(err.Error(), `"alice exists" (interaction "a login" of gateway)`) {
		t.Errorf("unhandled state: %v", err)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{SubtestName("gateway", "a request for a customer's profile"), "gateway/a_request_for_a_customer_s_profile"},
		{exported("order-history"), "OrderHistory"},
		{consumerOf("TestConsumerGatewayUsers"), "gateway"},
		{consumerOf("TestConsumerOrdersReplies"), "orders"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// A provider run as `go test -json` reports it: one interaction passes, one
// fails with the verifier's mismatch in its output.
const providerEvents = `{"Action":"run","Test":"TestProviderUsers"}
{"Action":"run","Test":"TestProviderUsers/gateway/a_signup"}
{"Action":"pass","Test":"TestProviderUsers/gateway/a_signup"}
{"Action":"run","Test":"TestProviderUsers/gateway/a_login"}
{"Action":"output","Test":"TestProviderUsers/gateway/a_login","Output":"1) Verifying a pact between gateway and users - a login\n"}
{"Action":"output","Test":"TestProviderUsers/gateway/a_login","Output":"    1.1) has a matching body\n"}
{"Action":"output","Test":"TestProviderUsers/gateway/a_login","Output":"           \u001b[31m$ -> Actual map is missing the following keys: expires_at\u001b[0m\n"}
{"Action":"fail","Test":"TestProviderUsers/gateway/a_login"}
{"Action":"fail","Test":"TestProviderUsers"}
`

func TestPairResultAndReports(t *testing.T) {
	run, err := parseEvents(strings.NewReader(providerEvents))
	if err != nil {
		t.Fatal(err)
	}
	pact := Pact{Consumer: "gateway", Provider: "users", Interactions: []Interaction{
		{Description: "a signup", Kind: KindHTTP}, {Description: "a login", Kind: KindHTTP},
	}}
	rep := &Report{ConsumerTests: []TestResult{{Name: "TestConsumerGatewayUsers", Consumer: "gateway", Passed: true}}}
	rep.Pairs = append(rep.Pairs, pairResult(pact, run, true, rep))
	if p := rep.Pairs[0]; p.Status != StatusFailed || p.Verified != 1 || p.Failed != 1 {
		t.Fatalf("pair %+v", p)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Interaction != "a login" ||
		rep.Failures[0].Message != "1.1) has a matching body; $ -> Actual map is missing the following keys: expires_at" {
		t.Fatalf("failures %+v", rep.Failures)
	}

	var matrix bytes.Buffer
	if err := rep.WriteMatrix(&matrix); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"users", "http 1/2 FAIL", `FAIL gateway → users: "a login": 1.1) has a matching body`} {
		if !strings.Contains(matrix.String(), want) {
			t.Errorf("matrix lacks %q:\n%s", want, matrix.String())
		}
	}

	var junit bytes.Buffer
	if err := rep.WriteJUnit(&junit, []Pact{pact}); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(junit.Bytes(), &suites); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, junit.String())
	}
	if suites.Tests != 3 || suites.Failures != 1 || suites.Suites[1].Cases[1].Failure == nil {
		t.Errorf("junit %+v", suites)
	}

	dir := t.TempDir()
	if err := rep.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		service string
		ok      bool
		reason  string
	}{
		{"users", false, `gateway → users: 1 of 2 interactions fail: "a login"`},
		{"gateway", false, "gateway → users: 1 of 2"},
		{"billing", false, "no pact names billing"},
	} {
		ok, reasons := loaded.CanIDeploy(tt.service)
		if ok != tt.ok || !strings.Contains(strings.Join(reasons, "\n"), tt.reason) {
			t.Errorf("CanIDeploy(%s) = %v %q, want %v with %q", tt.service, ok, reasons, tt.ok, tt.reason)
		}
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no contract results") {
		t.Errorf("Load without results: %v", err)
	}
}
