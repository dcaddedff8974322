package events

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewParseRoundTrip(t *testing.T) {
	in := ReserveStock{OrderID: "o1", Items: []Item{{ProductID: "p1", Quantity: 2}}}
	env, err := New(InventoryReserve, in)
	if err != nil {
		t.Fatal(err)
	}
	if env.ID == "" || env.Version != 1 || env.Subject != InventoryReserve {
		t.Fatalf("envelope = %+v", env)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	got, v, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := v.(*ReserveStock)
	if !ok || out.OrderID != "o1" || len(out.Items) != 1 || out.Items[0].Quantity != 2 {
		t.Fatalf("payload = %#v", v)
	}
	if got.ID != env.ID {
		t.Fatalf("id %s != %s", got.ID, env.ID)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    any
	}{
		{"unknown subject", "nope.cmd.x", ReserveStock{}},
		{"wrong payload type", InventoryReserve, ReleaseStock{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.subject, tt.data); err == nil {
				t.Fatal("want error")
			}
		})
	}
	if _, err := New(InventoryReserve, &ReserveStock{}); err != nil {
		t.Fatalf("pointer payload: %v", err)
	}
}

func TestParseRejectsPoison(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"not json", `garbage`, "decode envelope"},
		{"missing id", `{"subject":"inventory.cmd.reserve","version":1,"data":{}}`, "missing id"},
		{"unknown subject", `{"id":"1","subject":"x.y","version":1,"data":{}}`, "unknown subject"},
		{"future version", `{"id":"1","subject":"inventory.cmd.reserve","version":9,"data":{}}`, "unsupported version"},
		{"wrong field type", `{"id":"1","subject":"inventory.cmd.reserve","version":1,"data":{"order_id":7}}`, "decode inventory.cmd.reserve"},
		{"data not an object", `{"id":"1","subject":"inventory.cmd.reserve","version":1,"data":"x"}`, "decode inventory.cmd.reserve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.raw))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A reader ignores what it does not know within a version, so producers
// can add fields (to the payload or the envelope) without breaking it.
func TestParseToleratesUnknownFields(t *testing.T) {
	tests := []struct{ name, raw string }{
		{"payload field", `{"id":"1","subject":"inventory.cmd.reserve","version":1,"data":{"order_id":"o1","items":[{"product_id":"p1","quantity":2,"warehouse":"w9"}],"priority":"high"}}`},
		{"envelope field", `{"id":"1","subject":"inventory.cmd.reserve","version":1,"producer":"orders-2","data":{"order_id":"o1","items":[{"product_id":"p1","quantity":2}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, v, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := v.(*ReserveStock)
			if env.ID != "1" || !ok || p.OrderID != "o1" || len(p.Items) != 1 || p.Items[0].ProductID != "p1" || p.Items[0].Quantity != 2 {
				t.Fatalf("got %+v %#v", env, v)
			}
		})
	}
}

func TestStreamsCoverEverySubject(t *testing.T) {
	for _, s := range Subjects() {
		n := 0
		for stream, subs := range StreamSubjects {
			for _, p := range subs {
				if strings.HasSuffix(p, ">") && strings.HasPrefix(s, strings.TrimSuffix(p, ">")) {
					n++
					if stream == StreamDLQ {
						t.Errorf("%s lands in the DLQ stream", s)
					}
				}
			}
		}
		if n != 1 {
			t.Errorf("subject %s is captured by %d streams, want 1", s, n)
		}
	}
}
