package scaffold

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"sort"
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

// known lists every message of kit/events by the name of its constant. Go
// cannot list constants by reflection, so a test checks this table covers
// events.Subjects() and pairs each subject with the payload events.New
// accepts for it.
var known = []struct {
	name    string
	subject string
	payload any
}{
	{"InventoryReserve", events.InventoryReserve, events.ReserveStock{}},
	{"InventoryRelease", events.InventoryRelease, events.ReleaseStock{}},
	{"PaymentsCharge", events.PaymentsCharge, events.ChargePayment{}},
	{"PaymentsRefund", events.PaymentsRefund, events.RefundPayment{}},
	{"InventoryReserved", events.InventoryReserved, events.StockReserved{}},
	{"InventoryRejected", events.InventoryRejected, events.StockRejected{}},
	{"InventoryReleased", events.InventoryReleased, events.StockReleased{}},
	{"PaymentsCharged", events.PaymentsCharged, events.PaymentCharged{}},
	{"PaymentsDeclined", events.PaymentsDeclined, events.PaymentDeclined{}},
	{"PaymentsRefunded", events.PaymentsRefunded, events.PaymentRefunded{}},
	{"OrderCreated", events.OrderCreated, events.OrderCreatedV1{}},
	{"OrderConfirmed", events.OrderConfirmed, events.OrderConfirmedV1{}},
	{"OrderCancelled", events.OrderCancelled, events.OrderCancelledV1{}},
}

// EventNames lists the names --consumes and --publishes accept, sorted.
func EventNames() []string {
	names := make([]string, len(known))
	for i, k := range known {
		names[i] = k.name
	}
	sort.Strings(names)
	return names
}

// LookupEvent finds an event by its constant name (OrderConfirmed) or its
// subject (orders.evt.confirmed).
func LookupEvent(s string) (Event, error) {
	for _, k := range known {
		if k.name != s && k.subject != s {
			continue
		}
		stream, err := streamOf(k.subject)
		if err != nil {
			return Event{}, err
		}
		return Event{Name: k.name, Subject: k.subject, Payload: reflect.TypeOf(k.payload).Name(), Stream: stream}, nil
	}
	return Event{}, fmt.Errorf("unknown event %q", s)
}

// streamOf returns the stream whose subjects capture subject. A stream's
// subjects are NATS patterns: '*' is one token, a final '>' the rest.
func streamOf(subject string) (string, error) {
	streams := make([]string, 0, len(events.StreamSubjects))
	for stream := range events.StreamSubjects {
		streams = append(streams, stream)
	}
	sort.Strings(streams)
	for _, stream := range streams {
		for _, p := range events.StreamSubjects[stream] {
			if subjectMatches(p, subject) {
				return stream, nil
			}
		}
	}
	return "", fmt.Errorf("no stream stores subject %s", subject)
}

func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		if p != "*" && p != st[i] {
			return false
		}
	}
	return len(pt) == len(st)
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
