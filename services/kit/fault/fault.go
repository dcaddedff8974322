// Package fault sorts errors into the classes every retrying loop of kit
// (consumers, the outbox relay, the saga's sweeper) treats alike:
//
//   - transient: a dependency (Postgres, NATS, etcd) is unavailable or
//     asked to try again. Waiting fixes it, however long it takes, so a
//     transient failure never uses up a message's attempts.
//   - permanent: retrying cannot fix it (an undecodable or unknown message,
//     an error wrapped by Permanent). The message is parked at once.
//   - anything else is unknown: it gets a bounded number of attempts.
package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errPermanent marks an error that retrying cannot fix.
var errPermanent = errors.New("permanent failure")

// Permanent wraps err so that it is neither retried nor waited out.
func Permanent(err error) error { return fmt.Errorf("%w: %w", errPermanent, err) }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool { return errors.Is(err, errPermanent) }

// transientSQLStates are SQLSTATEs (besides class 08, connection exception)
// that say "the server cannot serve you right now" or "try the transaction
// again", not "this statement is wrong".
var transientSQLStates = map[string]bool{
	"57P01": true, // admin_shutdown (pg_terminate_backend, fast shutdown)
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now (starting up, recovering)
	"53300": true, // too_many_connections
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
}

// transientErrors are sentinel errors of the clients that mean the
// dependency is not reachable at the moment.
var transientErrors = []error{
	context.DeadlineExceeded, // a dependency call ran out of time
	io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
	syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
	syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT,
	puddle.ErrClosedPool,
	nats.ErrConnectionClosed, nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
	nats.ErrDisconnected, nats.ErrNoResponders, nats.ErrTimeout, nats.ErrNoServers,
	jetstream.ErrNoStreamResponse, jetstream.ErrConnectionClosed, jetstream.ErrNoHeartbeat,
	jetstream.ErrJetStreamNotEnabled, // the broker's JetStream is still recovering
}

// Transient reports whether err says that a dependency is unavailable, so
// that the operation will succeed once it is back. An error wrapped by
// Permanent is never transient, and neither is context.Canceled: the caller
// gave up, nothing is known about the dependency. io.EOF counts as a connection
// that went away: a handler that reads its own input must not return a
// bare io.EOF for bad input (wrap it with Permanent), or its message would
// be waited on forever.
func Transient(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || transientSQLStates[pgErr.Code]
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	for _, target := range transientErrors {
		if errors.Is(err, target) {
			return true
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return true
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
			return true
		}
	}
	return false
}
