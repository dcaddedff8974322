//go:build soak

// The soak is not part of `go test ./...` (it takes minutes and its point
// is the figures): `make soak` builds it in with the soak tag.

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv/durability"
)

// TestSoak is `make soak`: MSCTL_SOAK_ORDERS orders (10 000 there) by 32
// clients while every fault of the suite happens once, spread over the
// run; it prints the figures whether or not an invariant broke (a fault
// that cannot be caused, or a check that cannot look, ends it without).
func TestSoak(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("MSCTL_SOAK_ORDERS"))
	if err != nil || n <= 0 {
		t.Fatalf("MSCTL_SOAK_ORDERS=%q: want a number of orders, e.g. 10000 (make soak sets it)", os.Getenv("MSCTL_SOAK_ORDERS"))
	}
	ensureUp(t)
	recoverShop(t)
	r := drive(t, durability.Load{Clients: 32, Orders: n, Within: 40 * time.Minute},
		durability.Check{Final: 5 * time.Minute, Settle: time.Minute}, durabilityFaults()...)
	fmt.Printf("soak: %d orders, faults %d\n%s\n", n, len(durabilityFaults()), figures(r))
}

// figures prints a report as the soak's table.
func figures(r durability.Report) string {
	return fmt.Sprintf(`orders accepted     %d (refused %d, retried %d)
confirmed           %d
cancelled           %d
not final           %d
lost                %d
double charges      %d
double refunds      %d
wrong payments      %d
stock drift         %v
dangling/unreserved %d/%d
not in owner list   %d
not notified        %d
duration            %s
p99 accept→final    %s`, r.Accepted, r.Refused, r.Retries, r.Confirmed, r.Cancelled, r.Pending, r.Lost,
		r.DoubleCharges, r.DoubleRefunds, r.WrongPayments, r.StockDrift, r.Dangling, r.Unreserved,
		r.NotListed, r.NotNotified, r.LoadTime.Round(time.Millisecond), r.P99.Round(time.Millisecond))
}
