// Package durability drives orders through the shop's gateway while faults
// happen and then checks, against the services' real databases and the
// public API, that nothing was lost or done twice. The bounded e2e tests
// and the soak (`make soak`) both build on it: Load places the orders,
// Check judges what became of them.
package durability

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a bounded stream of orders: Clients shoppers place Orders orders
// between them, at most Rate per second in all (0: as fast as they can),
// and stop after Within whatever is left. Each order is one unit of
// Product, paid with the next of Cards. A client retries an order that
// got no answer, 429 or 5xx under the same Idempotency-Key, as a real
// client would, so that a fault shows as retries, not as refused orders.
type Load struct {
	Gateway string // the gateway's base URL, e.g. http://127.0.0.1:8080
	Clients int
	Orders  int
	Rate    float64
	Within  time.Duration
	Product string
	// Cards are used in turn, order by order (at least one).
	Cards []string
	// Prefix makes the load's users unique, e.g. the test's name and time.
	Prefix string
	// PerUser bounds the orders of one user (the order list shows 200):
	// a client signs up a new user after that many; 0 means 150.
	PerUser int
}

// User is a shopper the load signed up.
type User struct{ ID, Token string }

// Accepted is an order the gateway accepted (202 or 201).
type Accepted struct {
	ID, User string
	At       time.Time
}

// Result is what the load did. An order is refused when no attempt was
// accepted before the load's time ran out; its last answer is counted in
// Refused. Refused orders may still exist (the answer was lost, not the
// order), so Check judges every order of Users, not only Accepted.
type Result struct {
	Accepted []Accepted
	Users    []User
	Refused  map[string]int
	// Retries counts attempts that were answered with an error and repeated
	// with the same Idempotency-Key.
	Retries int
	Elapsed time.Duration
}

// Run is a load under way.
type Run struct {
	accepted atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}
	res      Result
	err      error
}

// Accepted is how many orders have been accepted so far.
func (r *Run) Accepted() int { return int(r.accepted.Load()) }

// Done is closed when the load has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Wait waits for the load to end. The error is for what is not the
// system's fault under a fault (a request the shop answered 400, a user
// that could not be signed up at all).
func (r *Run) Wait() (Result, error) {
	<-r.done
	return r.res, r.err
}

// Stop ends the load early and waits for it.
func (r *Run) Stop() { r.cancel(); <-r.done }

// Start begins placing orders.
func (l Load) Start(ctx context.Context) (*Run, error) {
	if l.Gateway == "" || l.Clients < 1 || l.Orders < 1 || l.Within <= 0 || l.Product == "" || len(l.Cards) == 0 {
		return nil, fmt.Errorf("durability.Load needs Gateway, Clients ≥ 1, Orders ≥ 1, Within > 0, Product and Cards: got %+v", l)
	}
	if l.PerUser == 0 {
		l.PerUser = 150
	}
	ctx, cancel := context.WithTimeout(ctx, l.Within)
	r := &Run{cancel: cancel, done: make(chan struct{}), res: Result{Refused: map[string]int{}}}
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	pace := pacer(ctx, l.Rate)
	begin := time.Now()
	for c := range l.Clients {
		wg.Go(func() {
			cl := client{l: l, name: fmt.Sprintf("%s-%d", l.Prefix, c)}
			for {
				n := int(next.Add(1))
				if n > l.Orders || pace(ctx) != nil {
					return
				}
				if cl.placed%l.PerUser == 0 {
					u, err := cl.signIn(ctx, cl.placed/l.PerUser)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					mu.Lock()
					r.res.Users = append(r.res.Users, u)
					mu.Unlock()
					cl.user = u
				}
				cl.placed++
				a, refused, retries, err := cl.place(ctx, n)
				mu.Lock()
				r.res.Retries += retries
				switch {
				case err != nil:
					errs = append(errs, err)
				case refused != "":
					r.res.Refused[refused]++
				default:
					r.res.Accepted = append(r.res.Accepted, a)
					r.accepted.Add(1)
				}
				mu.Unlock()
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		r.res.Elapsed = time.Since(begin)
		r.err = errors.Join(errs...)
		close(r.done)
	}()
	return r, nil
}

// pacer spaces orders rate per second apart overall; it returns ctx's
// error once the load's time is up.
func pacer(ctx context.Context, rate float64) func(context.Context) error {
	if rate <= 0 {
		return func(ctx context.Context) error { return ctx.Err() }
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	context.AfterFunc(ctx, tick.Stop)
	return func(ctx context.Context) error {
		select {
		case <-tick.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// client is one shopper: it places its orders one after the other.
type client struct {
	l      Load
	name   string
	user   User
	placed int
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// retryable is an answer a client tries again: the shop is busy or a
// dependency of it is down, and the Idempotency-Key makes a retry safe.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// call sends one request, body (unless nil) as JSON, and returns the status and body; status 0
// means no answer (err says why).
func call(ctx context.Context, method, url, token string, hdr map[string]string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// retry repeats attempt with a growing pause while it answers nothing or a
// retryable status, until it succeeds, fails for good or ctx ends. It
// returns the last status and body, and how often it retried.
func retry(ctx context.Context, attempt func() (int, []byte, error)) (int, []byte, int, error) {
	pause := 100 * time.Millisecond
	for retries := 0; ; retries++ {
		status, body, err := attempt()
		if err == nil && !retryable(status) {
			return status, body, retries, nil
		}
		if err != nil {
			body = []byte(err.Error())
		}
		select {
		case <-ctx.Done():
			return status, body, retries, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// signIn signs up and logs in the client's n-th user. A signup answered
// 409 is a retried one that went through.
func (c *client) signIn(ctx context.Context, n int) (User, error) {
	email := fmt.Sprintf("%s-%d@example.com", c.name, n)
	const password = "durability suite"
	status, body, _, err := retry(ctx, func() (int, []byte, error) {
		return call(ctx, "POST", c.l.Gateway+"/api/v1/auth/signup", "", nil, map[string]string{"email": email, "password": password, "name": c.name})
	})
	if err != nil || status != http.StatusCreated && status != http.StatusConflict {
		return User{}, fmt.Errorf("sign up %s: %d %s: %v", email, status, body, err)
	}
	status, body, _, err = retry(ctx, func() (int, []byte, error) {
		return call(ctx, "POST", c.l.Gateway+"/api/v1/auth/login", "", nil, map[string]string{"email": email, "password": password})
	})
	var out struct {
		Token string `json:"token"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Token == "" {
		return User{}, fmt.Errorf("log in %s: %d %s: %v", email, status, body, err)
	}
	id, err := subject(out.Token)
	if err != nil {
		return User{}, fmt.Errorf("log in %s: %w", email, err)
	}
	return User{ID: id, Token: out.Token}, nil
}

// subject reads the user id from a token's claims: orders are stored under
// it, and a signup retried after a lost answer (409) returns no id.
func subject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Sub == "" {
		return "", fmt.Errorf("token has no subject: %s", raw)
	}
	return claims.Sub, nil
}

// place places the load's n-th order, retrying under one Idempotency-Key.
// It returns the accepted order, or why it was refused, or an error for an
// answer that says the request itself was wrong.
func (c *client) place(ctx context.Context, n int) (Accepted, string, int, error) {
	card := c.l.Cards[n%len(c.l.Cards)]
	body := map[string]any{"items": []map[string]any{{"product_id": c.l.Product, "quantity": 1}}, "card_number": card}
	key := map[string]string{"Idempotency-Key": fmt.Sprintf("%s-%d", c.l.Prefix, n)}
	status, raw, retries, err := retry(ctx, func() (int, []byte, error) {
		return call(ctx, "POST", c.l.Gateway+"/api/v1/orders", c.user.Token, key, body)
	})
	at := time.Now()
	if err != nil {
		if status == 0 {
			return Accepted{}, "no answer", retries, nil
		}
		return Accepted{}, fmt.Sprint(status), retries, nil
	}
	var o struct {
		ID string `json:"id"`
	}
	if status != http.StatusAccepted && status != http.StatusCreated || json.Unmarshal(raw, &o) != nil || o.ID == "" {
		return Accepted{}, "", retries, fmt.Errorf("place order %d: %d %s", n, status, raw)
	}
	return Accepted{ID: o.ID, User: c.user.ID, At: at}, "", retries, nil
}
