// Package runtime defines the seam between the orchestrator and the thing
// that actually runs a workspace: host processes (local) or containers
// (docker). The orchestrator decides what runs when; a Runtime only knows how.
//
// The interface speaks in services, endpoints and instances, never in pids or
// container ids, so that both implementations pass the same conformance suite
// (runtimetest) and the orchestrator stays runtime-agnostic.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Infra component names, as shown in snapshots and progress output.
const (
	Postgres = "postgres"
	Broker   = "nats"
	Registry = "etcd"
)

// InfraComponents are the infra components in start order.
var InfraComponents = []string{Postgres, Broker, Registry}

// UnknownInfraError is what RestartInfra returns for a name that is no
// infra component.
func UnknownInfraError(component string) error {
	return fmt.Errorf("unknown infra component %q (infra: %s)", component, strings.Join(InfraComponents, ", "))
}

// Runtime runs one workspace. Implementations are safe for concurrent use.
type Runtime interface {
	// Name is "local", "docker" or "kubernetes", as --runtime takes it.
	Name() string

	// StartInfra starts Postgres, the broker and the registry and returns once
	// all three accept connections. Calling it again while they run returns the
	// same endpoints.
	StartInfra(ctx context.Context, spec InfraSpec) (Infra, error)

	// EnsureDatabase creates (once) the database and role of one service and
	// returns the DSN the service uses to reach it.
	EnsureDatabase(ctx context.Context, service string) (string, error)

	// Build makes the given services runnable, in parallel where possible.
	// Unchanged services are not rebuilt. progress, when non-nil, is called
	// from any goroutine as each service starts and finishes building.
	Build(ctx context.Context, services []BuildSpec, progress func(BuildEvent)) error

	// Start runs one instance of a built service. It returns once the
	// instance runs, not once it is ready: readiness is the caller's business.
	Start(ctx context.Context, spec Spec) (Instance, error)

	// RestartInfra restarts one infra component (Postgres, Broker or
	// Registry) with its data, whether it crashed, was stopped or still
	// runs, and returns once it accepts connections again. It returns the
	// infra's endpoints, which keep their host ports where the runtime can
	// keep them; the caller uses the returned ones from then on. An unknown
	// component is an error naming the valid ones.
	RestartInfra(ctx context.Context, component string) (Infra, error)

	// StopInfra stops the infra components gracefully, keeping their data.
	StopInfra(ctx context.Context, grace time.Duration) error

	// Cleanup removes everything of this workspace the runtime left running,
	// including leftovers of a previous run that died without stopping them,
	// and with volumes also the data. It is idempotent.
	Cleanup(ctx context.Context, volumes bool) error
}

// Pruner is implemented by runtimes whose instances outlive the process
// that started them (containers). Before Up, the orchestrator calls Prune
// instead of Cleanup: it removes only what cannot be reused, so that
// StartInfra and Start adopt unchanged instances instead of replacing them.
// replicas is how many instances of each service the coming Up runs; the
// instances of services not in it are not reused.
type Pruner interface {
	Prune(ctx context.Context, replicas map[string]int) error
}

// OTLPListener is implemented by runtimes whose services cannot reach the
// host's loopback (containers): the agent's OTLP receiver listens where
// OTLPListenAddr says instead of on 127.0.0.1.
type OTLPListener interface {
	OTLPListenAddr(ctx context.Context) (string, error)
}

// InfraSpec says how to start the infra.
type InfraSpec struct {
	// Postgres, Broker and Registry are fixed host ports; 0 picks free ones.
	PostgresPort, BrokerPort, RegistryPort int
	// Images used by runtimes that run infra from images, as image:version.
	PostgresImage, BrokerImage, RegistryImage string
	// OTLPHostAddr is the host:port of the agent's OTLP/HTTP receiver as seen
	// from the host. The runtime translates it into what services can reach.
	OTLPHostAddr string
}

// Infra holds the endpoints of the running infra, twice: as the host (the
// agent, tests) reaches them and as services reach them. For the local
// runtime both are the same; containers reach infra by network alias.
type Infra struct {
	Host     Endpoints
	Services Endpoints
}

// Endpoints of the infra components.
type Endpoints struct {
	Postgres string   // host:port
	NATSURL  string   // nats://host:port
	Etcd     []string // http://host:port
	// OTLP is the OTLP/HTTP base URL (http://host:port), empty when the spec
	// had no receiver.
	OTLP string
}

// BuildSpec is one service to build.
type BuildSpec struct {
	Name     string
	Dir      string // absolute source directory
	Language string // "go" or "node"
}

// BuildEvent reports progress of one service build.
type BuildEvent struct {
	Service string
	Done    bool
	Cached  bool  // nothing changed, nothing was compiled
	Err     error // set with Done when the build failed
	// ID names what the build made (an image tag, a content hash), set with
	// Done: equal IDs mean an unchanged service. Empty when the runtime
	// cannot tell; then Cached says whether the output changed since the
	// previous Build.
	ID string
}

// Spec is one instance to start.
type Spec struct {
	Service  string
	Instance string // unique instance id, exported as INSTANCE_ID
	// HostPort is the fixed host port (the gateway); 0 picks a free one.
	HostPort int
	// Env is the service environment without the address variables
	// (HTTP_ADDR, ADVERTISE_ADDR), which only the runtime can know.
	Env map[string]string
	// Output receives the instance's output line by line, from any goroutine.
	Output func(stream, line string)
}

// Instance is one running service instance.
type Instance interface {
	// Info describes the instance; it does not change after Start.
	Info() InstanceInfo
	// Stop asks the instance to stop (SIGTERM or equivalent), waits up to
	// grace, then kills it. It returns once the instance is gone.
	Stop(ctx context.Context, grace time.Duration) error
	// Done is closed when the instance has exited, for whatever reason.
	Done() <-chan struct{}
	// Exit describes how the instance exited; valid once Done is closed.
	Exit() Exit
}

// Routed is implemented by instances that receive traffic through
// something other than the endpoint the orchestrator probes: a Kubernetes
// Service sends connections to a pod only once the kubelet's readiness
// probe passed and the pod is Ready, seconds after the pod itself answers.
// The orchestrator counts such an instance ready only while InService is
// true as well as its own probe passes, so that a rolling replacement stops
// the next old instance only once traffic reaches the new one. Instances
// of the other runtimes are reached where they are probed (directly, or by
// relays that follow the orchestrator's readiness) and do not implement it.
type Routed interface {
	// InService reports whether the platform routes traffic to the
	// instance now. It is cheap (no I/O): the orchestrator calls it on
	// every readiness probe.
	InService() bool
}

// InstanceInfo describes a running instance.
type InstanceInfo struct {
	ID        string
	Endpoint  string // host:port the host reaches the instance at
	PID       int    // host process id, 0 when not a host process
	Container string // container id, empty when not a container
	StartedAt time.Time
}

// Exit is how an instance ended.
type Exit struct {
	Code int // -1 when killed by a signal or unknown
	Err  error
	At   time.Time
}

func (e Exit) String() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.Code == 0:
		return "exited"
	default:
		return "exit code " + strconv.Itoa(e.Code)
	}
}

// PortInUseError is returned by Start when a fixed host port is taken.
type PortInUseError struct {
	Port int
	// Holder describes the process holding the port ("pid 123 (nginx)"),
	// empty when it cannot be told.
	Holder string
}

func (e *PortInUseError) Error() string {
	msg := "port " + strconv.Itoa(e.Port) + " is already in use"
	if e.Holder != "" {
		msg += " by " + e.Holder
	}
	return msg
}

// ErrNotBuilt is returned by Start for a service Build has not made.
var ErrNotBuilt = errors.New("service is not built")
