package events

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Message describes one message of the catalogue, for tools that generate
// code using it (msctl new service reads its --consumes and --publishes
// choices from here, so there is no second list to keep in step).
type Message struct {
	// Name is the constant of this package that holds Subject, e.g. OrderConfirmed.
	Name    string
	Subject string
	// Payload is the name of the payload type in this package, e.g. OrderConfirmedV1.
	Payload string
	Version int
	// Stream is the stream that stores Subject (StreamOf).
	Stream string
}

// Catalogue lists every known message, sorted by Name.
func Catalogue() []Message {
	out := make([]Message, 0, len(schemas))
	for subject, sc := range schemas {
		out = append(out, Message{
			Name:    sc.name,
			Subject: subject,
			Payload: reflect.TypeOf(sc.newV()).Elem().Name(),
			Version: sc.version,
			Stream:  StreamOf(subject),
		})
	}
	slices.SortFunc(out, func(a, b Message) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// StreamOf names the stream that captures subject, or "" when none does.
func StreamOf(subject string) string {
	// Subject sets do not overlap; the order only makes a misconfiguration deterministic.
	for _, name := range slices.Sorted(maps.Keys(StreamSubjects)) {
		for _, p := range StreamSubjects[name] {
			if subjectMatches(p, subject) {
				return name
			}
		}
	}
	return ""
}

// subjectMatches reports whether the NATS subject pattern captures subject:
// '*' is one token, a final '>' one or more.
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
