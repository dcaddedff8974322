package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// workspace writes a manifest and the given service directories into a fresh
// temporary directory and returns the manifest path.
func workspace(t testing.TB, yml string, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(root, FileName)
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	p := workspace(t, `project: shop
services:
  users:
    database: true
  gateway:
    public: true
    depends_on: [users]
    env:
      LOG_LEVEL: debug
      TIMEOUT: 5
`, "services/users", "services/gateway")
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Project != "shop" || m.Gateway.Port != 8080 {
		t.Errorf("project/gateway = %q/%d", m.Project, m.Gateway.Port)
	}
	if got := m.Infra.Postgres.Ref(); got != "postgres:15" {
		t.Errorf("postgres ref = %q", got)
	}
	if got := m.Infra.Broker.Ref(); got != "nats:2.15" {
		t.Errorf("broker ref = %q", got)
	}
	if got := m.Infra.Registry.Ref(); got != "bitnami/etcd:3.5" {
		t.Errorf("registry ref = %q", got)
	}
	u := m.Services["users"]
	want := &Service{
		Name: "users", Path: "services/users", Dir: filepath.Join(m.Dir(), "services", "users"),
		Language: "go", Database: true, Health: "/readyz", Replicas: 1, Env: map[string]string{}, Line: 3,
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("users = %+v\nwant %+v", u, want)
	}
	g := m.Services["gateway"]
	if !g.Public || !reflect.DeepEqual(g.DependsOn, []string{"users"}) || g.Env["TIMEOUT"] != "5" || g.Env["LOG_LEVEL"] != "debug" {
		t.Errorf("gateway = %+v", g)
	}
	if m.Public() != g {
		t.Errorf("Public() = %v", m.Public())
	}
	if got := m.ServiceNames(); !reflect.DeepEqual(got, []string{"gateway", "users"}) {
		t.Errorf("ServiceNames = %v", got)
	}
	if m.Dir() != filepath.Dir(p) {
		t.Errorf("Dir = %q, want %q", m.Dir(), filepath.Dir(p))
	}
}

func TestLoadRepositoryManifest(t *testing.T) {
	// The repository's own manifest must parse; its service directories may
	// not all exist yet while services land, so only syntax and schema errors
	// fail here.
	_, err := Load("../../msctl.yaml")
	var es Errors
	if errors.As(err, &es) {
		for _, e := range es {
			if !strings.Contains(e.Msg, "does not exist") {
				t.Error(e)
			}
		}
	} else if err != nil {
		t.Fatal(err)
	}
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "services/orders"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "msctl.yaml")
	yml := "project: shop\nservices:\n  orders:\n    secrets: [card-vault, salt, card-vault]\n"
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Services["orders"].Secrets; !slices.Equal(got, []string{"card-vault", "salt"}) {
		t.Errorf("secrets = %v, want [card-vault salt]", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yml  string
		dirs []string
		// want holds "line: message fragment" for each expected error, in order.
		want []string
	}{
		{
			name: "unknown key",
			yml:  "project: shop\nservices:\n  users:\n    prot: 9000\n",
			dirs: []string{"services/users"},
			want: []string{`4: unknown key "services.users.prot" in service users`},
		},
		{
			name: "unknown top-level key suggests",
			yml:  "project: shop\nservicse: {}\n",
			want: []string{`2: unknown key "servicse"`},
		},
		{
			name: "bad secrets",
			yml:  "project: shop\nservices:\n  users:\n    secrets: [card-vault, Card_Vault]\n  orders:\n    secrets: card-vault\n",
			dirs: []string{"services/users", "services/orders"},
			want: []string{`4: services.users.secrets: "Card_Vault" is not a valid secret name`, `6: services.orders.secrets must be a list`},
		},
		{
			name: "missing project",
			yml:  "services: {}\n",
			want: []string{"1: project is required"},
		},
		{
			name: "missing directory",
			yml:  "project: shop\nservices:\n  users:\n    path: svc/users\n",
			want: []string{`4: service "users": directory svc/users does not exist`},
		},
		{
			name: "missing default directory",
			yml:  "project: shop\nservices:\n  users: {}\n",
			want: []string{`3: service "users": directory services/users does not exist`},
		},
		{
			name: "cycle",
			yml:  "project: shop\nservices:\n  a:\n    depends_on: [b]\n  b:\n    depends_on: [c]\n  c:\n    depends_on: [a]\n",
			dirs: []string{"services/a", "services/b", "services/c"},
			want: []string{"4: dependency cycle: a -> b -> c -> a"},
		},
		{
			name: "self dependency",
			yml:  "project: shop\nservices:\n  a:\n    depends_on: [a]\n",
			dirs: []string{"services/a"},
			want: []string{"4: dependency cycle: a -> a"},
		},
		{
			name: "unknown dependency",
			yml:  "project: shop\nservices:\n  users: {}\n  orders:\n    depends_on:\n      - user\n",
			dirs: []string{"services/users", "services/orders"},
			want: []string{`6: service "orders" depends on unknown service "user"`},
		},
		{
			name: "duplicate service port",
			yml:  "project: shop\nservices:\n  a:\n    port: 9000\n  b:\n    port: 9000\n",
			dirs: []string{"services/a", "services/b"},
			want: []string{"6: port 9000 of services.b.port is already used by services.a.port (line 4)"},
		},
		{
			name: "port equals gateway port",
			yml:  "project: shop\ngateway:\n  port: 9000\nservices:\n  a:\n    port: 9000\n",
			dirs: []string{"services/a"},
			want: []string{"6: port 9000 of services.a.port is already used by gateway.port (line 3)"},
		},
		{
			name: "port equals infra port",
			yml:  "project: shop\ninfra:\n  postgres:\n    port: 5432\nservices:\n  a:\n    port: 5432\n",
			dirs: []string{"services/a"},
			want: []string{"7: port 5432 of services.a.port is already used by infra.postgres.port (line 4)"},
		},
		{
			name: "bad service name",
			yml:  "project: shop\nservices:\n  User_Svc: {}\n",
			want: []string{`3: service name "User_Svc" is not a valid name`},
		},
		{
			name: "bad project name",
			yml:  "project: -shop\nservices: {}\n",
			want: []string{`1: project "-shop" is not a valid name`},
		},
		{
			name: "bad language",
			yml:  "project: shop\nservices:\n  users:\n    language: rust\n",
			dirs: []string{"services/users"},
			want: []string{`4: services.users.language "rust" is not supported`},
		},
		{
			name: "replicas below one",
			yml:  "project: shop\nservices:\n  users:\n    replicas: 0\n",
			dirs: []string{"services/users"},
			want: []string{"4: services.users.replicas is 0, must be at least 1"},
		},
		{
			name: "two public services",
			yml:  "project: shop\nservices:\n  a:\n    public: true\n  b:\n    public: true\n",
			dirs: []string{"services/a", "services/b"},
			want: []string{`6: services "a" and "b" are both public`},
		},
		{
			name: "wrong types",
			yml:  "project: shop\ngateway:\n  port: high\nservices:\n  a:\n    public: yes-please\n",
			dirs: []string{"services/a"},
			want: []string{`3: gateway.port must be an integer, got "high"`, `6: services.a.public must be true or false`},
		},
		{
			name: "route to two services",
			yml:  "project: shop\nservices:\n  a:\n    routes: {/api/v1/x: public}\n  b:\n    routes:\n      /api/v1/x: auth\n",
			dirs: []string{"services/a", "services/b"},
			want: []string{`7: route /api/v1/x of service "b" is already routed to "a"`},
		},
		{
			name: "bad route access",
			yml:  "project: shop\nservices:\n  a:\n    routes:\n      /api/v1/x: private\n      api: auth\n",
			dirs: []string{"services/a"},
			want: []string{`5: route /api/v1/x of service "a" has access "private"`, `6: route "api" of service "a" is not a path`},
		},
		{
			name: "invalid yaml",
			yml:  "project: shop\nservices:\n  a: [\n",
			want: []string{"invalid YAML"},
		},
		{
			name: "empty",
			yml:  "",
			want: []string{"1: manifest is empty"},
		},
		{
			name: "several errors reported together",
			yml:  "project: shop\nservices:\n  a:\n    language: cobol\n    replicas: -1\n",
			dirs: []string{"services/a"},
			want: []string{"4: services.a.language", "5: services.a.replicas is -1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := workspace(t, tt.yml, tt.dirs...)
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			var first *Error
			if !errors.As(err, &first) {
				t.Fatalf("error %v (%T) is not a *manifest.Error", err, err)
			}
			var list []*Error
			var es Errors
			if errors.As(err, &es) {
				list = es
			} else {
				list = []*Error{first}
			}
			if len(list) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(list), len(tt.want), err)
			}
			for i, e := range list {
				if e.File != p {
					t.Errorf("error %d file = %q, want %q", i, e.File, p)
				}
				if e.Fix == "" {
					t.Errorf("error %d has no fix: %v", i, e)
				}
				got := strings.TrimPrefix(e.Error(), p+":")
				if !strings.Contains(got, tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestGatewayRoutes(t *testing.T) {
	p := workspace(t, `project: shop
services:
  users:
    routes: {/api/v1/auth: public}
  orders:
    routes:
      /api/v1/orders: auth
      /api/v1/carts: auth
`, "services/users", "services/orders")
	m, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "/api/v1/auth=users:public,/api/v1/carts=orders:auth,/api/v1/orders=orders:auth"
	if got := m.GatewayRoutes(); got != want {
		t.Errorf("GatewayRoutes = %q, want %q", got, want)
	}
}

func TestUnknownKeyNamesAllowedKeys(t *testing.T) {
	p := workspace(t, "project: shop\nservices:\n  users:\n    prot: 9000\n", "services/users")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), `did you mean "port"?`) || !strings.Contains(err.Error(), "allowed keys: path, language, port") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func TestFind(t *testing.T) {
	p := workspace(t, "project: shop\n", "services/users/api")
	root := filepath.Dir(p)
	for _, start := range []string{root, filepath.Join(root, "services"), filepath.Join(root, "services", "users", "api")} {
		got, err := Find(start)
		if err != nil || got != p {
			t.Errorf("Find(%s) = %q, %v; want %q", start, got, err, p)
		}
	}
	_, err := Find(t.TempDir())
	// A manifest in a parent of the temp dir would make this pass vacuously.
	if err == nil {
		t.Skip("a msctl.yaml exists above the temporary directory")
	}
	var e *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &e) {
		t.Errorf("err = %v, want ErrNotFound as *Error", err)
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name string
		deps map[string][]string
		want [][]string
	}{
		{"empty", map[string][]string{}, nil},
		{"independent", map[string][]string{"b": nil, "a": nil}, [][]string{{"a", "b"}}},
		{
			name: "shop",
			deps: map[string][]string{
				"users": nil, "inventory": nil, "payments": nil, "notifications": nil,
				"orders":  {"inventory", "payments"},
				"gateway": {"users", "inventory", "orders", "payments", "notifications"},
			},
			want: [][]string{{"inventory", "notifications", "payments", "users"}, {"orders"}, {"gateway"}},
		},
		{
			name: "diamond",
			deps: map[string][]string{"a": nil, "b": {"a"}, "c": {"a"}, "d": {"b", "c"}},
			want: [][]string{{"a"}, {"b", "c"}, {"d"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manifest{Services: map[string]*Service{}}
			for n, d := range tt.deps {
				m.Services[n] = &Service{Name: n, DependsOn: d}
			}
			got, err := m.Order()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Order = %v, want %v", got, tt.want)
			}
		})
	}
	m := &Manifest{Services: map[string]*Service{"a": {DependsOn: []string{"b"}}, "b": {DependsOn: []string{"a"}}}}
	if _, err := m.Order(); err == nil {
		t.Error("Order of a cycle succeeded")
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"shop": true, "a": true, "user-svc": true, "a1": true,
		"": false, "1a": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	p := workspace(b, `project: shop
gateway:
  port: 8080
infra:
  postgres: {image: postgres, version: "15"}
  broker: {image: nats, version: "2.15"}
  registry: {image: bitnami/etcd, version: "3.5"}
services:
  users: {database: true}
  inventory: {database: true}
  payments: {database: true}
  orders: {database: true, depends_on: [inventory, payments]}
  notifications: {database: true}
  gateway:
    public: true
    depends_on: [users, inventory, orders, payments, notifications]
    env: {LOG_LEVEL: info}
`, "services/users", "services/inventory", "services/payments", "services/orders", "services/notifications", "services/gateway")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(p); err != nil {
			b.Fatal(err)
		}
	}
}
