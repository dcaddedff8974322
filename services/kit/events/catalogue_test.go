package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"
)

// TestCatalogueNamesTheConstants checks each message's Name against this
// package's source: Go cannot list constants by reflection, so the names are
// written next to the schemas, and this is what keeps them right. It also
// checks that every message has a payload New accepts and a stream.
func TestCatalogueNamesTheConstants(t *testing.T) {
	consts := map[string]string{}
	file, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(file, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i < len(vs.Values) {
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					consts[name.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
		return false
	})
	cat := Catalogue()
	if len(cat) != len(Subjects()) {
		t.Fatalf("catalogue has %d messages, kit knows %d subjects", len(cat), len(Subjects()))
	}
	for _, m := range cat {
		if consts[m.Name] != m.Subject {
			t.Errorf("%s: the constant %s holds %q", m.Subject, m.Name, consts[m.Name])
		}
		if m.Stream == "" {
			t.Errorf("%s: no stream stores it", m.Subject)
		}
		if m.Payload == "" || m.Version < 1 {
			t.Errorf("%s: payload %q, version %d", m.Subject, m.Payload, m.Version)
		}
		if _, err := New(m.Subject, schemas[m.Subject].newV()); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"orders.evt.>", "orders.evt.confirmed", true},
		{"orders.evt.>", "orders.evt", false},
		{"orders.*.confirmed", "orders.evt.confirmed", true},
		{"orders.evt.confirmed", "orders.evt.confirmed", true},
		{"orders.evt.confirmed", "orders.evt.cancelled", false},
		{"orders.evt", "orders.evt.confirmed", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}
