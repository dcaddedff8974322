package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/msctl/msctl/services/kit/fault"
)

// timeoutError is a handler run cut at HandlerTimeout.
type timeoutError struct{ limit time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("handler did not finish within %s (HandlerTimeout)", e.limit)
}

// errorType classifies a handler's error for messaging.process.duration's error.type, the way
// settle treats it: "" for success.
func errorType(err error) string {
	switch {
	case err == nil:
		return ""
	case IsPermanent(err):
		return "permanent"
	case fault.Transient(err):
		return "transient"
	}
	if _, ok := err.(timeoutError); ok {
		return "timeout"
	}
	return "failed"
}

// consumerLag reads what the consumer has not yet had delivered (NumPending) or acknowledged
// (NumAckPending): one consumer info request, which kit/metrics makes at most once per collection.
func consumerLag(cons jetstream.Consumer) func(ctx context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int64(info.NumPending) + int64(info.NumAckPending), nil
	}
}
