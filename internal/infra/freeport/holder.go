package freeport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrInUse is what Check wraps when another socket holds the port.
var ErrInUse = errors.New("address in use")

// Check reports whether port can be bound on 127.0.0.1: nil when it can, an
// error wrapping ErrInUse when another socket holds it, another error when
// binding fails for a different reason. Services listen on 127.0.0.1, and
// binding the loopback address also fails when a server holds the port on
// 0.0.0.0, so this one check covers both.
func Check(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d: %w", port, ErrInUse)
		}
		return err
	}
	return l.Close()
}

// Holder names the process listening on TCP port as "pid 42 (nginx)", the one
// format every message about a taken port uses. It returns "" when /proc does
// not tell, e.g. when the holder belongs to another user or another network
// namespace.
func Holder(port int) string { return holder("/proc", port) }

// holder matches the inodes of the sockets listening on port, from
// <procRoot>/net/tcp{,6}, against the processes' open descriptors.
func holder(procRoot string, port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		for _, ino := range listeningInodes(filepath.Join(procRoot, f), port) {
			inodes["socket:["+ino+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	fds, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*", "fd", "*"))
	for _, fd := range fds {
		target, err := os.Readlink(fd)
		if err != nil || !inodes[target] {
			continue
		}
		pidDir := filepath.Dir(filepath.Dir(fd))
		pid := filepath.Base(pidDir)
		comm, err := os.ReadFile(filepath.Join(pidDir, "comm"))
		if err != nil {
			return "pid " + pid
		}
		return fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm)))
	}
	return ""
}

// listeningInodes returns the inodes of sockets in LISTEN state on port from
// a /proc/net/tcp-format file.
func listeningInodes(file string, port int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	const listen = "0A"
	want := fmt.Sprintf(":%04X", port)
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != listen || !strings.HasSuffix(fields[1], want) {
			continue
		}
		out = append(out, fields[9])
	}
	return out
}
