package durability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// Fault is one thing that goes wrong while orders flow: Inject causes it
// and returns once the shop should have recovered from it.
type Fault struct {
	Name   string
	Inject func(t *testing.T)
}

// Drive runs load against the shop at gateway, whose databases dsn finds,
// injects faults in turn, each once a further share of the orders has been
// accepted, then checks every order and fails t for each broken
// invariant. Load's Gateway, Product, Cards and Prefix and Check's Gateway
// and DSN are filled in here: the cable (its stock topped up so that no
// order is refused for want of it), one declined card in five (so that
// cancellations, releases and their notices happen too), a prefix from
// the test's name.
func Drive(t *testing.T, gateway string, dsn DSN, load Load, check Check, faults ...Fault) Report {
	t.Helper()
	load.Gateway, check.Gateway, check.DSN = gateway, gateway, dsn
	load.Product = testenv.Cable
	load.Cards = []string{testenv.GoodCard, testenv.GoodCard, testenv.DeclinedCard, testenv.GoodCard, testenv.GoodCard}
	load.Prefix = fmt.Sprintf("dur-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	if err := topUp(t.Context(), dsn, load.Product, 1_000_000); err != nil {
		t.Fatal(err)
	}
	before, err := Stock(t.Context(), dsn, load.Product)
	if err != nil {
		t.Fatal(err)
	}
	run, err := load.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(run.Stop)
	for i, f := range faults {
		// The last fault comes at three quarters of the orders at the
		// latest: the shop recovers under load.
		at := (i + 1) * load.Orders / (len(faults) + 3)
		for run.Accepted() < at {
			select {
			case <-run.Done():
				t.Fatalf("the load ended after %d accepted orders, before fault %s (due at %d)", run.Accepted(), f.Name, at)
			case <-time.After(50 * time.Millisecond):
			}
		}
		begin := time.Now()
		f.Inject(t)
		t.Logf("%s at %d accepted orders, recovered in %s", f.Name, at, time.Since(begin).Round(time.Millisecond))
	}
	res, err := run.Wait()
	if err != nil {
		t.Errorf("load: %v", err)
	}
	report, err := check.Run(t.Context(), before, res)
	t.Logf("%s: %s", t.Name(), report)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, p := range report.Problems {
		t.Error(p)
	}
	return report
}

// topUp raises product's stock to at least n: running out would cancel
// orders for a reason that is no fault's.
func topUp(ctx context.Context, dsn DSN, product string, n int) error {
	conn, err := connect(ctx, dsn, "inventory")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `UPDATE products SET stock = greatest(stock, $2) WHERE id = $1`, product, n); err != nil {
		return fmt.Errorf("top up the stock of %s: %w", product, err)
	}
	return nil
}
