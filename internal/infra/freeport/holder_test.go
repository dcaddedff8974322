package freeport

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestCheckAndHolder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := Check(port); !errors.Is(err, ErrInUse) {
		t.Errorf("Check(taken) = %v, want ErrInUse", err)
	}
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := "pid " + strconv.Itoa(os.Getpid()) + " (" + strings.TrimSpace(string(comm)) + ")"
	if got := Holder(port); got != want {
		t.Errorf("Holder = %q, want %q", got, want)
	}
	l.Close()
	if err := Check(port); err != nil {
		t.Errorf("Check(released) = %v", err)
	}
	if got := Holder(port); got != "" {
		t.Errorf("Holder(released) = %q, want empty", got)
	}
}

// A listener on IPv6 is found through /proc/net/tcp6.
func TestHolderIPv6(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	if _, err := os.Stat("/proc/net/tcp6"); err != nil {
		t.Skip("no /proc/net/tcp6")
	}
	port := l.Addr().(*net.TCPAddr).Port
	if got, want := Holder(port), "pid "+strconv.Itoa(os.Getpid())+" ("; !strings.HasPrefix(got, want) {
		t.Errorf("Holder = %q, want prefix %q", got, want)
	}
}
