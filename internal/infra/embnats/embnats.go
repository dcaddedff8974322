// Package embnats runs a NATS server with JetStream inside the process: the
// local runtime's broker and the tests' broker.
//
// Streams are stored on disk under Config.StoreDir and every write is synced
// (sync_interval: always), so acknowledged messages survive a restart or a
// crash of the process.
package embnats

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds the wait for the listener and JetStream recovery.
const readyTimeout = 30 * time.Second

// Config says where and how to run the server.
type Config struct {
	// StoreDir holds JetStream's file store.
	StoreDir string
	// Port is the client port on 127.0.0.1; 0 picks a free one, which is
	// then kept across Restart.
	Port int
	// Logs receives the server's notices, warnings and errors; nil drops them.
	Logs io.Writer
}

// Server is a running embedded NATS server.
type Server struct {
	cfg Config

	mu   sync.Mutex
	ns   *server.Server
	port int
}

// Start starts the server and waits until it accepts clients with JetStream
// ready.
func Start(cfg Config) (*Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("start nats: empty store directory")
	}
	s := &Server{cfg: cfg, port: cfg.Port}
	if s.port == 0 {
		s.port = server.RANDOM_PORT
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	log := &writerLogger{w: s.cfg.Logs, fatal: make(chan struct{})}
	ns, err := server.NewServer(&server.Options{
		ServerName: "msctl-nats",
		Host:       "127.0.0.1",
		Port:       s.port,
		JetStream:  true,
		StoreDir:   s.cfg.StoreDir,
		SyncAlways: true,
		// The process that embeds us owns signal handling.
		NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	ns.SetLoggerV2(log, false, false, false)
	go ns.Start()
	if err := waitReady(ns, log.fatal); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("start nats on 127.0.0.1:%d: %w: %s", s.port, err, log.lastError())
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("start nats: jetstream not enabled: %s", log.lastError())
	}
	s.ns = ns
	s.port = ns.Addr().(*net.TCPAddr).Port
	return nil
}

// waitReady polls in short steps because a server that hit a fatal error
// (port taken, store unusable) never becomes ready and should not cost the
// caller the whole timeout.
func waitReady(ns *server.Server, fatal <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for !ns.ReadyForConnections(25 * time.Millisecond) {
		select {
		case <-fatal:
			return errors.New("fatal error")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", readyTimeout)
		}
	}
	return nil
}

// URL is the client URL, e.g. nats://127.0.0.1:4222; it stays the same
// across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port is the client port.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// Shutdown stops the server and waits until it has released its port and
// store. It is safe to call more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown()
}

func (s *Server) shutdown() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart stops the server and starts it again on the same port and store,
// so connected clients reconnect and find their streams and consumers.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown()
	if err := s.start(); err != nil {
		return fmt.Errorf("restart nats: %w", err)
	}
	return nil
}

// writerLogger adapts server.Logger to an io.Writer and remembers the last
// error so a failed start can say why.
type writerLogger struct {
	w     io.Writer
	fatal chan struct{} // closed on the first Fatalf

	mu      sync.Mutex
	lastErr string
}

var _ server.Logger = (*writerLogger)(nil)

func (l *writerLogger) Noticef(format string, v ...any) { l.write("INF", format, v) }
func (l *writerLogger) Warnf(format string, v ...any)   { l.write("WRN", format, v) }
func (l *writerLogger) Errorf(format string, v ...any)  { l.write("ERR", format, v) }
func (l *writerLogger) Fatalf(format string, v ...any)  { l.write("FTL", format, v) }
func (l *writerLogger) Debugf(format string, v ...any)  { l.write("DBG", format, v) }
func (l *writerLogger) Tracef(format string, v ...any)  { l.write("TRC", format, v) }

func (l *writerLogger) write(level, format string, v []any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if level == "ERR" || level == "FTL" {
		l.lastErr = msg
	}
	if level == "FTL" {
		select {
		case <-l.fatal:
		default:
			close(l.fatal)
		}
	}
	if l.w != nil {
		fmt.Fprintf(l.w, "[%s] %s\n", level, msg)
	}
}

func (l *writerLogger) lastError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr == "" {
		return "no error logged"
	}
	return l.lastErr
}
