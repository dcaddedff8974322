package kit_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/inbox"
	"github.com/msctl/msctl/services/kit/outbox"
)

// TestServiceMigrationsCopyKitTables pins every service's copy of the outbox
// and inbox tables to kit's schema. kit owns those tables (its code reads and
// writes them), but each service creates them in one of its own migrations
// (database per service), and a migration that has been applied must never
// change. So kit's schema cannot move either without a new migration in every
// service; this test is what notices a copy or a kit change that drifted.
func TestServiceMigrationsCopyKitTables(t *testing.T) {
	files, err := filepath.Glob("../*/migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no service migrations found (%v)", err)
	}
	want := map[string]string{"outbox": normalizeSQL(outbox.Schema), "inbox": normalizeSQL(inbox.Schema)}
	copies := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		up := normalizeSQL(upSection(string(data)))
		for table, schema := range want {
			if !regexp.MustCompile(`(?i)\b(CREATE|ALTER) TABLE (IF NOT EXISTS )?` + table + `\b`).MatchString(up) {
				continue
			}
			copies[table] = append(copies[table], f)
			if !strings.Contains(up, schema) {
				t.Errorf("%s: its %s table is not kit's %s.Schema to the letter:\nwant %s\nin   %s", f, table, table, schema, up)
			}
		}
	}
	// The shop's messaging services; were none found, the test would prove nothing.
	for table, atLeast := range map[string]int{"outbox": 3, "inbox": 4} {
		if len(copies[table]) < atLeast {
			t.Errorf("%s table found in %v, want at least %d services' migrations", table, copies[table], atLeast)
		}
	}
}

// upSection is the part of a goose migration that applies it.
func upSection(sql string) string {
	if i := strings.Index(sql, "-- +goose Down"); i >= 0 {
		return sql[:i]
	}
	return sql
}

// normalizeSQL drops comments and folds whitespace, so layout does not count.
func normalizeSQL(sql string) string {
	var b strings.Builder
	for line := range strings.Lines(sql) {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte(' ')
	}
	return strings.Join(strings.Fields(b.String()), " ")
}
