package testenv

import (
	"testing"

	"github.com/nats-io/nats.go"
)

func TestNATSPerTest(t *testing.T) {
	nc, err := nats.Connect(NATS(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("jetstream not available: %v", err)
	}
}
