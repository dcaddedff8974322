// Package embetcd runs a single-member etcd inside the process: the local
// runtime's service registry and the tests' registry. It listens on
// 127.0.0.1 only and keeps its data in Config.DataDir, so a restart on the
// same directory keeps every key.
package embetcd

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/msctl/msctl/internal/infra/freeport"
)

// readyTimeout bounds the wait for the member to elect itself and serve.
const readyTimeout = 30 * time.Second

// Config says where and how to run the member.
type Config struct {
	// DataDir holds the WAL and the key-value store.
	DataDir string
	// ClientPort and PeerPort are the ports on 127.0.0.1; 0 picks free ones.
	ClientPort, PeerPort int
	// Logs receives etcd's warnings and errors as JSON lines; nil drops them.
	Logs io.Writer
}

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// Start starts the member and waits until it serves clients.
func Start(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start etcd: empty data directory")
	}
	// Ports we picked may be taken before etcd binds them; pick again a few
	// times. Ports the caller chose are tried once.
	attempts := 1
	if cfg.ClientPort == 0 || cfg.PeerPort == 0 {
		attempts = 3
	}
	var err error
	for range attempts {
		var s *Server
		s, err = start(cfg)
		if err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("start etcd: %w", err)
}

func start(cfg Config) (*Server, error) {
	ports, err := freeport.GetN(2)
	if err != nil {
		return nil, err
	}
	if cfg.ClientPort != 0 {
		ports[0] = cfg.ClientPort
	}
	if cfg.PeerPort != 0 {
		ports[1] = cfg.PeerPort
	}
	clientURL := loopbackURL(ports[0])
	peerURL := loopbackURL(ports[1])

	ec := embed.NewConfig()
	ec.Name = "msctl"
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = ec.Name + "=" + peerURL.String()
	// A single member has no peer to lose touch with, so short ticks cost
	// nothing and let it elect itself in tens of milliseconds instead of
	// a second after a restart.
	ec.TickMs = 10
	ec.ElectionMs = 100
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newLogger(cfg.Logs))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("serve: %w", err)
	case <-time.After(readyTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("not ready after %v", readyTimeout)
	}
	return &Server{etcd: e, endpoints: []string{clientURL.String()}}, nil
}

func loopbackURL(port int) url.URL {
	return url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)}
}

// newLogger writes error-level JSON lines to w; etcd at info level logs
// dozens of lines per start, which would bury the caller's own output.
func newLogger(w io.Writer) *zap.Logger {
	if w == nil {
		return zap.NewNop()
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.ErrorLevel))
}

// Endpoints are the client URLs, e.g. [http://127.0.0.1:2379].
func (s *Server) Endpoints() []string { return s.endpoints }

// Close stops the member and waits until its ports and files are released.
// It is safe to call more than once.
func (s *Server) Close() {
	// embed.Etcd.Close blocks forever when called a second time.
	s.closeOnce.Do(s.etcd.Close)
}

// Err reports a fatal serving error after Start, e.g. for a supervisor.
func (s *Server) Err() <-chan error { return s.etcd.Err() }
