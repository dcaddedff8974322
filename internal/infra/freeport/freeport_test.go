package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestGetIsBindable(t *testing.T) {
	port, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d not bindable: %v", port, err)
	}
	l.Close()
}

func TestGetNDistinct(t *testing.T) {
	ports, err := GetN(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want three distinct positive ports", ports)
		}
		seen[p] = true
	}
}
