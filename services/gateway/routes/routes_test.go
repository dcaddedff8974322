package routes

import (
	"strings"
	"testing"
)

const shopRoutes = "/api/v1/auth=users:public,/api/v1/products=inventory:public,/api/v1/orders=orders:auth,/api/v1/notifications=notifications:auth"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, spec, wantErr string
	}{
		{"no equals", "/api/v1/x", "missing '='"},
		{"no access", "/api/v1/x=svc", "missing ':'"},
		{"relative prefix", "api=svc:public", "must start with '/'"},
		{"root prefix", "/=svc:public", "non-root"},
		{"dot segment", "/api/../x=svc:public", "clean"},
		{"internal", "/internal/users=users:public", "internal"},
		{"bad service", "/api=Svc:public", "service name"},
		{"empty service", "/api=:public", "service name"},
		{"bad access", "/api=svc:private", "neither public nor auth"},
		{"duplicate", "/api=a:public,/api/=b:auth", "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want containing %q", tt.spec, err, tt.wantErr)
			}
		})
	}
}

func TestParseEmptyAndSpaces(t *testing.T) {
	tab, err := Parse(" , /a = svc-1 : auth ,")
	if err != nil {
		t.Fatal(err)
	}
	got := tab.Routes()
	if len(got) != 1 || got[0] != (Route{Prefix: "/a", Service: "svc-1", Access: Auth}) {
		t.Fatalf("routes = %+v", got)
	}
	empty, err := Parse("")
	if err != nil || len(empty.Routes()) != 0 {
		t.Fatalf("empty spec: %v %+v", err, empty)
	}
}

func TestMatch(t *testing.T) {
	tab, err := Parse(shopRoutes + ",/api/v1/orders/admin=admin:public")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		service string
		access  Access
		ok      bool
	}{
		{"/api/v1/products", "inventory", Public, true},
		{"/api/v1/products/", "inventory", Public, true},
		{"/api/v1/products/42", "inventory", Public, true},
		{"/api/v1/productsx", "", 0, false},
		{"/api/v1/orders/1/items", "orders", Auth, true},
		{"/api/v1/orders/admin/x", "admin", Public, true}, // longest prefix wins
		{"/api/v1/orders/administrator", "orders", Auth, true},
		{"/api/v1/auth/login", "users", Public, true},
		{"/internal/users/1", "", 0, false},
		{"/api/v1/products/../../../internal/users/1", "", 0, false},
		{"/api/v1/products//x", "", 0, false},
		{"/", "", 0, false},
		{"", "", 0, false},
		{"/api/v2/products", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, ok := tab.Match(tt.path)
			if ok != tt.ok || r.Service != tt.service || (ok && r.Access != tt.access) {
				t.Fatalf("Match(%q) = %+v, %v; want %s/%s, %v", tt.path, r, ok, tt.service, tt.access, tt.ok)
			}
		})
	}
}

func TestServices(t *testing.T) {
	tab, err := Parse(shopRoutes + ",/api/v1/me=users:auth")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(tab.Services(), ",")
	if got != "inventory,notifications,orders,users" {
		t.Fatalf("Services() = %s", got)
	}
}
