//go:build contracts

package contracts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pact-foundation/pact-go/v2/consumer"
	"github.com/pact-foundation/pact-go/v2/message"
	msgv4 "github.com/pact-foundation/pact-go/v2/message/v4"
	"github.com/pact-foundation/pact-go/v2/models"
	"github.com/pact-foundation/pact-go/v2/provider"

	"github.com/msctl/msctl/internal/contractsrun"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/pg"
)

// httpPact starts a V4 HTTP pact between consumer and provider.
func httpPact(t *testing.T, consumerName, providerName string) *consumer.V4HTTPMockProvider {
	t.Helper()
	p, err := consumer.NewV4Pact(consumer.MockHTTPProviderConfig{
		Consumer: consumerName,
		Provider: providerName,
		Host:     "127.0.0.1",
		PactDir:  pactDir(),
		LogDir:   t.TempDir(),
	})
	if err != nil {
		t.Fatalf("new pact %s-%s: %v", consumerName, providerName, err)
	}
	return p
}

// messagePact starts a V4 message pact: consumer receives what provider publishes.
func messagePact(t *testing.T, consumerName, providerName string) *msgv4.AsynchronousPact {
	t.Helper()
	p, err := msgv4.NewAsynchronousPact(msgv4.Config{Consumer: consumerName, Provider: providerName, PactDir: pactDir()})
	if err != nil {
		t.Fatalf("new message pact %s-%s: %v", consumerName, providerName, err)
	}
	return p
}

// openDB gives the test a fresh database of its own with migrations applied.
func openDB(t *testing.T, name string, migrations fs.FS) *pgxpool.Pool {
	t.Helper()
	dsn := testenv.Database(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pg.Open(ctx, dsn, migrations)
	if err != nil {
		t.Fatalf("open %s database: %v", name, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// providerUnderTest is what a provider test hands to verify: its real HTTP
// handler (nil for a message-only provider), the provider states it can set
// up and the messages it can produce, by interaction description.
type providerUnderTest struct {
	Name     string
	Handler  http.Handler
	States   models.StateHandlers
	Messages message.Handlers
}

// verify checks every interaction any consumer expects of p, one subtest per
// interaction (named by contractsrun.SubtestName, so the driver can report
// each). Unknown provider states fail before anything runs; no pacts at all
// fails as well.
func verify(t *testing.T, p providerUnderTest) {
	t.Helper()
	dir := pactDir()
	all, err := contractsrun.LoadPacts(dir)
	if err != nil {
		t.Fatal(err)
	}
	mine := contractsrun.PactsFor(all, p.Name)
	handler := p.Handler
	if handler == nil {
		handler = http.NotFoundHandler()
	}
	if from, to, ok := renameFor(p.Name); ok {
		handler = renameField(handler, from, to)
		p.Messages = renameInMessages(p.Messages, from, to)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	req := func() provider.VerifyRequest {
		return provider.VerifyRequest{
			Provider:             p.Name,
			ProviderBaseURL:      srv.URL,
			StateHandlers:        p.States,
			MessageHandlers:      p.Messages,
			FailIfNoPactsFound:   true,
			DisableColoredOutput: true,
			RequestTimeout:       30 * time.Second,
		}
	}
	if len(mine) == 0 {
		// Let Pact itself refuse an empty source, then say what to do.
		r := req()
		r.PactDirs = []string{dir}
		err := provider.NewVerifier().VerifyProvider(t, r)
		t.Fatalf("no pacts for provider %s in %s (run the consumer tests first): %v", p.Name, dir, err)
	}
	if err := contractsrun.CheckStates(mine, func(s string) bool { _, ok := p.States[s]; return ok }); err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	for _, pact := range mine {
		for _, in := range pact.Interactions {
			t.Run(contractsrun.SubtestName(pact.Consumer, in.Description), func(t *testing.T) {
				r := req()
				r.PactFiles = []string{pact.File}
				// The verifier takes a regular expression; match this description only.
				r.FilterDescription = "^" + regexp.QuoteMeta(in.Description) + "$"
				if err := provider.NewVerifier().VerifyProvider(t, r); err != nil {
					t.Errorf("%s → %s: %q: %v", pact.Consumer, p.Name, in.Description, err)
				}
			})
		}
	}
}

// renameFor reads envRename for provider.
func renameFor(providerName string) (from, to string, ok bool) {
	spec := os.Getenv(envRename)
	name, rest, found := strings.Cut(spec, ":")
	if !found || name != providerName {
		return "", "", false
	}
	from, to, ok = strings.Cut(rest, "=")
	return from, to, ok && from != "" && to != ""
}

// renameField wraps h so every JSON object key from in its responses becomes
// to: the test-only fault that shows verification bites.
func renameField(h http.Handler, from, to string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := renameJSON(rec.Body.Bytes(), from, to)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

func renameInMessages(hs message.Handlers, from, to string) message.Handlers {
	out := make(message.Handlers, len(hs))
	for desc, h := range hs {
		out[desc] = func(states []models.ProviderState) (message.Body, message.Metadata, error) {
			body, md, err := h(states)
			if raw, ok := body.([]byte); ok && err == nil {
				body = renameJSON(raw, from, to)
			}
			return body, md, err
		}
	}
	return out
}

func renameJSON(raw []byte, from, to string) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				if k == from {
					k = to
				}
				out[k] = walk(e)
			}
			return out
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		}
		return v
	}
	out, err := json.Marshal(walk(v))
	if err != nil {
		return raw
	}
	return out
}

// jsonMessage is what a message producer hands the verifier: the exact bytes
// the outbox relay would publish.
func jsonMessage(raw []byte) (message.Body, message.Metadata, error) {
	return raw, message.Metadata{"contentType": "application/json"}, nil
}

// stateParam reads a string parameter of a provider state. pact-go passes
// the state change body through, so the FFI's "params" object arrives nested.
func stateParam(s models.ProviderState, key string) (string, error) {
	params := s.Parameters
	if nested, ok := params["params"].(map[string]any); ok {
		params = nested
	}
	v, ok := params[key].(string)
	if !ok || v == "" {
		return "", fmt.Errorf("provider state %q needs the string parameter %q", s.Name, key)
	}
	return v, nil
}

// decodeBody decodes a recorded response body.
func decodeBody(t *testing.T, body *bytes.Buffer, v any) {
	t.Helper()
	if err := json.Unmarshal(body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", body.String(), err)
	}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}
