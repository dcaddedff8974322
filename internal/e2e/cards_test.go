package e2e

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// After an order, its card number is nowhere at rest: not in any table or
// the WAL of any database, not in the broker's stream store (commands,
// outboxes relayed, DLQ), not in the registry, not in a log line. Orders
// seals it for payments; payments keeps the last four digits.
//
// The scan reads every byte under .msctl/. It proves something only if
// the order itself reached the files scanned, so the order id must be
// found in the Postgres files and in the stream store.
func TestNoCardNumberAtRest(t *testing.T) {
	ensureUp(t)
	card := uniqueCard(t)
	token, _ := signup(t)
	p := gateway(t).InStock(5)
	id := gateway(t).PlaceOrder(token, p.ID, card, 1, nil)
	if o := gateway(t).Settle(token, id, 30*time.Second); o.Status != "CONFIRMED" {
		t.Fatalf("order %+v, want CONFIRMED", o)
	}
	if logs := shop.Must(t, "logs", "--raw").Stdout; strings.Contains(logs, card) {
		t.Error("a log line holds the card number")
	}

	state := filepath.Join(shop.Dir, ".msctl")
	deadline := time.Now().Add(20 * time.Second)
	for {
		hits := scan(t, state, []byte(card), []byte(id))
		if len(hits[0]) > 0 {
			t.Fatalf("the card number is stored in clear in %v", hits[0])
		}
		inPG, inNATS := under(hits[1], "postgres"), under(hits[1], "nats")
		if inPG && inNATS {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order id is not in the files scanned (postgres %v, nats %v): the scan proves nothing; found in %v", inPG, inNATS, hits[1])
		}
		time.Sleep(time.Second) // the stream store writes behind
	}
}

// uniqueCard is a well-formed card number no other test uses, so that a
// hit can only come from this order.
func uniqueCard(t *testing.T) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e15))
	if err != nil {
		t.Fatal(err)
	}
	return "5" + leftPad(n.String(), 15)
}

func leftPad(s string, n int) string { return strings.Repeat("0", n-len(s)) + s }

// scan returns, for each needle, the files under root holding it. It
// follows the link .msctl/postgres may be to the cluster's data.
func scan(t *testing.T, root string, needles ...[]byte) [][]string {
	t.Helper()
	hits := make([][]string, len(needles))
	var walk func(dir, shown string)
	walk = func(dir, shown string) {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // a file removed while walking
			}
			rel, _ := filepath.Rel(dir, path)
			name := filepath.Join(shown, rel)
			if d.Type()&fs.ModeSymlink != 0 {
				if target, err := filepath.EvalSymlinks(path); err == nil {
					if fi, err := os.Stat(target); err == nil && fi.IsDir() {
						walk(target, name)
					}
				}
				return nil
			}
			if !d.Type().IsRegular() || strings.HasSuffix(path, ".sock") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for i, n := range needles {
				if bytes.Contains(data, n) {
					hits[i] = append(hits[i], name)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(root, ".msctl")
	return hits
}

// under reports whether any of files lies below a directory called dir.
func under(files []string, dir string) bool {
	for _, f := range files {
		if strings.Contains(f, string(filepath.Separator)+dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}
