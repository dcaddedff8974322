package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestProxiedAnswersTheProxyAddressOnlyForProxiedServices(t *testing.T) {
	inner := NewStatic(map[string][]string{"inventory": {"127.0.0.1:1001"}, "users": {"127.0.0.1:1002"}})
	proxies, err := ParseProxies([]string{"inventory=127.0.0.1:41001", "payments=127.0.0.1:41002"})
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxied(inner, proxies)
	in, err := p.Pick("inventory")
	if err != nil || in.Addr != "127.0.0.1:41001" || in.ID != "inventory-0" {
		t.Errorf("inventory = %+v, %v; want the proxy address and the registry's id", in, err)
	}
	if in, err := p.Pick("users"); err != nil || in.Addr != "127.0.0.1:1002" {
		t.Errorf("users (no proxy) = %+v, %v", in, err)
	}
	// No live instance stays an error, though the proxy would accept.
	if _, err := p.Pick("payments"); !errors.Is(err, ErrNoInstances) {
		t.Errorf("payments without instances = %v, want ErrNoInstances", err)
	}
}

func TestParseProxiesNamesTheForm(t *testing.T) {
	for _, bad := range []string{"inventory", "=127.0.0.1:1", "inventory=127.0.0.1"} {
		if _, err := ParseProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "service=host:port") {
			t.Errorf("ParseProxies(%q) = %v", bad, err)
		}
	}
}
