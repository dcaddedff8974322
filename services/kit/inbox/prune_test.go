package inbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/inbox"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPruneRemovesOnlyRowsBeyondTheHorizon(t *testing.T) {
	ctx := context.Background()
	db, err := pgxpool.New(ctx, testenv.Database(t, "inbox"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ctx, inbox.Schema); err != nil {
		t.Fatal(err)
	}
	// Ages relative to now; the dedup window is 2 minutes.
	rows := map[string]string{
		"old":        "25 hours",
		"older":      "30 days",
		"recent":     "23 hours",
		"in-window":  "1 minute",
		"just-now":   "0 seconds",
		"past-dedup": "3 minutes",
	}
	for id, age := range rows {
		if _, err := db.Exec(ctx, `INSERT INTO inbox (consumer, message_id, received_at) VALUES ('c', $1, now() - $2::interval)`, id, age); err != nil {
			t.Fatal(err)
		}
	}
	left := func() map[string]bool {
		r, err := db.Query(ctx, `SELECT message_id FROM inbox`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out := map[string]bool{}
		for r.Next() {
			var id string
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		return out
	}

	n, err := inbox.Prune(ctx, db, inbox.DefaultRetain)
	if err != nil || n != 2 {
		t.Fatalf("pruned %d rows (%v), want the 2 older than a day", n, err)
	}
	if got := left(); len(got) != 4 || got["old"] || got["older"] {
		t.Fatalf("left %v", got)
	}
	// A horizon shorter than the dedup window is widened to it: a
	// republish inside the window must still find its row.
	if n, err = inbox.Prune(ctx, db, time.Second); err != nil || n != 2 {
		t.Fatalf("pruned %d rows (%v), want recent and past-dedup", n, err)
	}
	if got := left(); len(got) != 2 || !got["in-window"] || !got["just-now"] {
		t.Fatalf("left %v, want the rows inside the dedup window", got)
	}
}
