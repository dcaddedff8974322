package scaffold

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/msctl/msctl/services/kit/events"
)

// Event is a message a scaffolded service may consume or publish, as the
// templates need it.
type Event struct {
	// Name is the Go constant in services/kit/events, e.g. OrderConfirmed.
	Name string
	// Subject is its value, e.g. orders.evt.confirmed.
	Subject string
	// Payload is the payload type's name in kit/events, e.g. OrderConfirmedV1.
	Payload string
	// Stream is the stream storing the subject, e.g. EVENTS.
	Stream string
}

// EventNames lists the names --consumes and --publishes accept, sorted: the
// constants of kit/events, whose catalogue is the one list of messages.
func EventNames() []string {
	cat := events.Catalogue()
	names := make([]string, len(cat))
	for i, m := range cat {
		names[i] = m.Name
	}
	return names
}

// LookupEvent finds an event by its constant name (OrderConfirmed) or its
// subject (orders.evt.confirmed).
func LookupEvent(s string) (Event, error) {
	for _, m := range events.Catalogue() {
		if m.Name != s && m.Subject != s {
			continue
		}
		if m.Stream == "" {
			return Event{}, fmt.Errorf("no stream stores subject %s", m.Subject)
		}
		return Event{Name: m.Name, Subject: m.Subject, Payload: m.Payload, Stream: m.Stream}, nil
	}
	return Event{}, fmt.Errorf("unknown event %q", s)
}

// eventsDir is where a workspace keeps kit/events.
const eventsDir = "services/kit/events"

// streamExprs maps stream names to the Go expression generated code uses
// for them: the workspace's own kit/events constant (events.StreamX), read
// from its source so generated code follows kit's naming. A stream kit
// declares no constant for is written as a quoted string.
func streamExprs(root string) (map[string]string, error) {
	exprs := map[string]string{}
	files, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(eventsDir), "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", eventsDir, err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", eventsDir, err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || !name.IsExported() {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						continue
					}
					if _, ok := events.StreamSubjects[v]; ok {
						exprs[v] = "events." + name.Name
					}
				}
			}
		}
	}
	for stream := range events.StreamSubjects {
		if _, ok := exprs[stream]; !ok {
			exprs[stream] = strconv.Quote(stream)
		}
	}
	return exprs, nil
}
