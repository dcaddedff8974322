package doctor

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

// PactLibName is the Pact FFI library pact-go loads.
const PactLibName = "libpact_ffi.so"

// FindPactLib returns the path of libpact_ffi.so, looked for in the
// LD_LIBRARY_PATH directories, /usr/local/lib and /usr/lib: the places the
// dynamic linker (and pact-go's rpath) will find it.
func FindPactLib() (string, error) {
	return findPactLib(os.Getenv("LD_LIBRARY_PATH"), []string{"/usr/local/lib", "/usr/lib"})
}

func findPactLib(ldLibraryPath string, system []string) (string, error) {
	var dirs []string
	for _, d := range filepath.SplitList(ldLibraryPath) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, system...)
	for _, d := range dirs {
		p := filepath.Join(d, PactLibName)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s", PactLibName, strings.Join(dirs, ", "))
}

var errInUse = errors.New("address in use")

func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return errInUse
		}
		return err
	}
	return l.Close()
}

// PortHolder names the process listening on TCP port, as "name (pid N)", by
// matching the socket inode from <procRoot>/net/tcp{,6} against the
// processes' open descriptors. It returns "" when it cannot tell, e.g. when
// the holder belongs to another user or another network namespace.
func PortHolder(procRoot string, port int) string {
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
		return fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), pid)
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
