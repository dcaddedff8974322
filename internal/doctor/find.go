package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// PactLibName is the Pact FFI library pact-go loads.
const PactLibName = "libpact_ffi.so"

// FindPostgresBin returns the directory holding the Postgres server binaries
// initdb and postgres: from PATH when both are there, else the newest
// /usr/lib/postgresql/<version>/bin (where Debian installs them, off PATH).
func FindPostgresBin() (string, error) {
	return findPostgresBin(exec.LookPath, "/usr/lib/postgresql")
}

func findPostgresBin(lookPath func(string) (string, error), libRoot string) (string, error) {
	if initdb, err := lookPath("initdb"); err == nil {
		if postgres, err := lookPath("postgres"); err == nil {
			// Resolve links: initdb finds postgres next to its real path, and
			// callers want the directory the binaries live in.
			di, errI := filepath.EvalSymlinks(initdb)
			dp, errP := filepath.EvalSymlinks(postgres)
			if errI == nil && errP == nil && filepath.Dir(di) == filepath.Dir(dp) {
				return filepath.Dir(di), nil
			}
		}
	}
	entries, err := os.ReadDir(libRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("find postgres binaries: %w", err)
	}
	var versions []string
	for _, e := range entries {
		bin := filepath.Join(libRoot, e.Name(), "bin")
		if isExecutable(filepath.Join(bin, "initdb")) && isExecutable(filepath.Join(bin, "postgres")) {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("initdb and postgres are neither on PATH nor in %s/*/bin", libRoot)
	}
	slices.SortFunc(versions, compareVersions)
	return filepath.Join(libRoot, versions[len(versions)-1], "bin"), nil
}

// compareVersions orders dotted numeric versions ("9.6" < "15").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

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
