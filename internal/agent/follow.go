package agent

import (
	"context"
	"net"
	"net/url"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/msctl/msctl/internal/runtime"
)

// An infra component the orchestrator restarted may come back on another
// host port (a docker container whose old port was taken meanwhile), and
// the agent's own connections to the broker and the registry must follow
// it: they read the current endpoint from the orchestrator rather than
// keep the one they were made with.

// brokerDialer dials the broker where the orchestrator says it is now,
// whatever address the NATS connection was made with.
type brokerDialer struct {
	infra func() (runtime.Infra, bool)
	d     net.Dialer
}

func (b *brokerDialer) Dial(network, address string) (net.Conn, error) {
	if inf, ok := b.infra(); ok {
		if u, err := url.Parse(inf.Host.NATSURL); err == nil && u.Host != "" {
			address = u.Host
		}
	}
	return b.d.Dial(network, address)
}

func newBrokerDialer(infra func() (runtime.Infra, bool)) *brokerDialer {
	return &brokerDialer{infra: infra, d: net.Dialer{Timeout: 2 * time.Second}}
}

// followRegistry points cli at the registry's current endpoints whenever
// they change, until ctx ends.
func followRegistry(ctx context.Context, cli *clientv3.Client, infra func() (runtime.Infra, bool)) {
	cur := cli.Endpoints()
	everyPoll(ctx, func(context.Context) {
		if inf, ok := infra(); ok && len(inf.Host.Etcd) > 0 && !slices.Equal(inf.Host.Etcd, cur) {
			cur = slices.Clone(inf.Host.Etcd)
			cli.SetEndpoints(cur...)
		}
	})
}
