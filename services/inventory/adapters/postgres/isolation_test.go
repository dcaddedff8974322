package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestDatabasePerService: each service's role reaches its own database and no other.
func TestDatabasePerService(t *testing.T) {
	s := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsns := map[string]string{}
	for _, name := range []string{"iso_users", "iso_inventory"} {
		dsn, err := s.EnsureDatabase(ctx, name, name, "pw-"+name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.DropDatabase(ctx, name, name); err != nil {
				t.Errorf("drop %s: %v", name, err)
			}
		})
		dsns[name] = dsn
	}

	own, err := pgx.Connect(ctx, dsns["iso_inventory"])
	if err != nil {
		t.Fatalf("inventory role on its own database: %v", err)
	}
	own.Close(ctx)

	cross := strings.Replace(dsns["iso_inventory"], "/iso_inventory?", "/iso_users?", 1)
	if cross == dsns["iso_inventory"] {
		t.Fatalf("cannot retarget %s", dsns["iso_inventory"])
	}
	conn, err := pgx.Connect(ctx, cross)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("the inventory role connected to the users database")
	}
	if !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("connecting across was refused for the wrong reason: %v", err)
	}
}
