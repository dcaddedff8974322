// Package pgserver runs a PostgreSQL server from the host's binaries (initdb
// and postgres, see FindBin) as a child process. The local runtime uses it for
// the workspace database and integration tests use it through testenv.
//
// Layout: the cluster lives in Config.DataDir; the generated superuser
// password is kept beside it in DataDir+".password" (mode 0600) so that a
// restart on the same DataDir finds it again. TCP connections need a password
// (scram-sha-256); the unix socket, in a private temporary directory, trusts
// local users and is what the server's own admin calls use.
//
// As root, the server runs as the `postgres` user (or `nobody`), because
// PostgreSQL refuses to run as root: the data directory must then be
// reachable by that user, which Start checks up front.
package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msctl/msctl/internal/infra/freeport"
)

// Superuser is the cluster's superuser role.
const Superuser = "postgres"

// stopGrace is how long Stop waits for a fast shutdown before it kills.
const stopGrace = 15 * time.Second

// readyTimeout bounds the wait for a starting server when ctx has no deadline.
const readyTimeout = 60 * time.Second

// Config says where and how to run the server.
type Config struct {
	// DataDir holds the cluster; it is created and initialised on first use.
	DataDir string
	// Port is the TCP port; 0 picks a free one on every start.
	Port int
	// Listen is the TCP listen address, 127.0.0.1 when empty.
	Listen string
	// Logs receives the output of initdb and postgres; nil discards it.
	Logs io.Writer
}

// Server is a running postgres.
type Server struct {
	bin      string
	acct     account
	dataDir  string
	sockDir  string
	listen   string
	port     int
	password string
	out      *tailWriter

	cmd     *exec.Cmd
	done    chan struct{} // closed when the postmaster has exited
	exitErr error         // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start initialises DataDir if needed, starts postgres and waits until it
// accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("start postgres: empty data directory")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	bin, err := FindBin()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := acct.checkTraverse(dataDir); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1"
	}
	s := &Server{
		bin:     bin,
		acct:    acct,
		dataDir: dataDir,
		listen:  listen,
		out:     newTailWriter(cfg.Logs, 8<<10),
	}
	if s.password, err = loadOrCreatePassword(dataDir + ".password"); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := s.initdb(ctx); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := removeStalePID(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	// A port we picked may be taken by someone else before postgres binds
	// it; pick again a few times rather than fail the caller.
	attempts := 1
	if cfg.Port == 0 {
		attempts = 3
	}
	for i := range attempts {
		port := cfg.Port
		if port == 0 {
			if port, err = freeport.Get(); err != nil {
				return nil, fmt.Errorf("start postgres: %w", err)
			}
		}
		err = s.run(ctx, port)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) || i == attempts-1 {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
	}
	return nil, fmt.Errorf("start postgres: %w", err)
}

var errAddrInUse = errors.New("address already in use")

// run starts the postmaster on port and waits for it to be ready.
func (s *Server) run(ctx context.Context, port int) error {
	sockDir, err := os.MkdirTemp("", "msctl-pgsock-")
	if err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if err := s.acct.checkTraverse(sockDir); err != nil {
		os.RemoveAll(sockDir)
		return fmt.Errorf("socket directory (set TMPDIR elsewhere): %w", err)
	}
	if err := s.acct.chown(sockDir); err != nil {
		os.RemoveAll(sockDir)
		return err
	}
	s.sockDir, s.port = sockDir, port
	s.done = make(chan struct{})
	s.cmd = exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", s.dataDir,
		"-p", strconv.Itoa(port),
		"-k", sockDir,
		"-c", "listen_addresses="+s.listen,
		"-c", "fsync=on",
	)
	s.cmd.Dir = "/"
	s.cmd.Env = serverEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = s.acct.sysProcAttr()
	if err := s.spawn(); err != nil {
		os.RemoveAll(sockDir)
		return fmt.Errorf("run postgres: %w", err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.abort()
		if strings.Contains(s.out.String(), "Address already in use") {
			return fmt.Errorf("port %d: %w", port, errAddrInUse)
		}
		return fmt.Errorf("wait for postgres on port %d: %w\n%s", port, err, s.out.String())
	}
	if err := s.setSuperuserPassword(ctx); err != nil {
		s.abort()
		return err
	}
	return nil
}

// abort tears down a server that failed to come up, so Start can try again
// or report the error without leaving a process behind.
func (s *Server) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	s.stop(ctx)
	os.RemoveAll(s.sockDir)
}

// spawn starts the postmaster from a goroutine locked to its OS thread for
// the server's whole life: the kernel's parent-death signal fires when the
// spawning thread exits, and Go may retire an unlocked thread at any time.
func (s *Server) spawn() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		s.exitErr = s.cmd.Wait()
		runtime.UnlockOSThread()
		close(s.done)
	}()
	return <-started
}

func (s *Server) waitReady(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := s.admin(ctx, "postgres")
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(context.Background())
			if err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// setSuperuserPassword runs on every start so the password file stays the
// source of truth even if it was recreated.
func (s *Server) setSuperuserPassword(ctx context.Context) error {
	conn, err := s.admin(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ALTER ROLE "+ident(Superuser)+" PASSWORD "+literal(s.password)); err != nil {
		return fmt.Errorf("set superuser password: %w", err)
	}
	return nil
}

// initdb creates the cluster unless DataDir already holds one.
func (s *Server) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return s.acct.chown(s.dataDir)
	}
	if err := os.MkdirAll(filepath.Dir(s.dataDir), 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := os.Mkdir(s.dataDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	if err := s.acct.chown(s.dataDir); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "initdb"),
		"-D", s.dataDir,
		"-U", Superuser,
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
	)
	cmd.Dir = "/"
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.acct.sysProcAttr().Credential}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", s.dataDir, err, s.out.String())
	}
	return nil
}

// admin connects as the superuser over the unix socket.
func (s *Server) admin(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5",
		quoteKV(s.sockDir), s.port, Superuser, quoteKV(db)))
	if err != nil {
		return nil, fmt.Errorf("admin connection config: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("admin connection: %w", err)
	}
	return conn, nil
}

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// PID is the postmaster's process id (also its process group id).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Done is closed when the postmaster exits, whether by Stop or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// DSN is the superuser's TCP connection string for database db.
func (s *Server) DSN(db string) string {
	return s.dsn(Superuser, s.password, db)
}

func (s *Server) dsn(user, password, db string) string {
	host := s.listen
	if i := strings.IndexByte(host, ','); i >= 0 {
		host = host[:i]
	}
	switch strings.TrimSpace(host) {
	case "", "*", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(strings.TrimSpace(host), strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Stop shuts the server down fast (SIGINT: roll back open transactions,
// checkpoint, exit) and kills the whole process group if that takes longer
// than ctx or a grace period allows. Stop is safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop(ctx)
		os.RemoveAll(s.sockDir)
	})
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop postgres: %w", err)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	case <-grace.C:
	}
	// Negative pid: the postmaster leads its own group, so this also takes
	// down backends that would otherwise linger holding shared memory.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill postgres: %w", err)
	}
	<-s.done
	return fmt.Errorf("stop postgres: killed after fast shutdown did not finish")
}

// removeStalePID deletes a postmaster.pid whose process is gone (or is some
// other program that reused the pid), as left by a killed server.
func removeStalePID(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 && isPostgres(pid) {
		return nil // a live server: postgres itself reports the conflict
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", path, err)
	}
	return nil
}

func isPostgres(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return true // cannot tell: assume it is, postgres will decide
	}
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres")
}

func loadOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read superuser password: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create data directory parent: %w", err)
	}
	pw := randomHex(16)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write superuser password: %w", err)
	}
	return pw, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// serverEnv drops PG* variables so the caller's client settings (PGDATA,
// PGPORT, PGHOST...) cannot redirect initdb or the server.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes a string for SQL where parameters are not allowed (utility
// statements such as CREATE ROLE ... PASSWORD). standard_conforming_strings
// is on, so doubling single quotes is the whole escape.
func literal(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// quoteKV quotes a value for a libpq keyword/value connection string.
func quoteKV(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
