package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/testenv"
	"github.com/msctl/msctl/services/kit/bus"
	"github.com/msctl/msctl/services/kit/events"
	"github.com/msctl/msctl/services/kit/pg"
	"github.com/msctl/msctl/services/kit/vault/vaulttest"
	"github.com/msctl/msctl/services/payments/adapters/postgres"
	"github.com/msctl/msctl/services/payments/app"
	"github.com/msctl/msctl/services/payments/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Payments opens the sealed card, charges, and keeps only the last four
// digits; a card sealed for another order (or under another key) never
// opens, so the command is poison and goes to the dead-letter queue
// instead of being retried or declined.
func TestChargeOpensOnlyItsOwnSealedCard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := pg.Open(ctx, testenv.Database(t, "payments"), migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	cards := vaulttest.New(t)
	a := app.New(postgres.New(db), cards, &app.Faults{})
	const card = "4242424242421234"
	charge := func(orderID, sealedFor string) error {
		sealed, err := cards.Seal(card, sealedFor)
		if err != nil {
			t.Fatal(err)
		}
		return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			var replies pgx.Batch
			return a.Charge(ctx, tx, &replies, events.ChargePayment{OrderID: orderID, UserID: "u1", AmountCents: 100, Card: sealed})
		})
	}

	if err := charge("o-1", "o-1"); err != nil {
		t.Fatal(err)
	}
	var last4 string
	if err := db.QueryRow(ctx, `SELECT card_last4 FROM payments WHERE order_id = 'o-1'`).Scan(&last4); err != nil {
		t.Fatal(err)
	}
	if last4 != "1234" {
		t.Errorf("stored last4 %q, want 1234", last4)
	}
	err = charge("o-2", "o-1")
	if !bus.IsPermanent(err) || !strings.Contains(err.Error(), "o-2") {
		t.Fatalf("card sealed for another order: err = %v, want a permanent error naming the order", err)
	}
}
