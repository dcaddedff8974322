package pgserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// account is the identity initdb and postgres run as. PostgreSQL refuses to
// run as root, so a root caller hands the server to an unprivileged user.
type account struct {
	name     string
	uid, gid uint32
	switched bool // true when the children run as another user than we do
}

// serverAccount picks who runs the server: ourselves when we are not root,
// else the `postgres` system user (created by Debian's postgresql package),
// else `nobody`.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
	}
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("user %s has non-numeric ids %s:%s", name, u.Uid, u.Gid))
			continue
		}
		return account{name: name, uid: uint32(uid), gid: uint32(gid), switched: true}, nil
	}
	return account{}, fmt.Errorf("running as root and no unprivileged user to run postgres as: %w", errors.Join(errs...))
}

// sysProcAttr puts the child in its own process group (so Stop can signal
// every backend at once and a terminal Ctrl-C does not reach it directly),
// drops to the server account, and asks the kernel to stop the server if
// we die without calling Stop, so no postmaster outlives its owner.
func (a account) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if a.switched {
		attr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid}
	}
	return attr
}

// chown hands a directory we created to the server account.
func (a account) chown(path string) error {
	if !a.switched {
		return nil
	}
	if err := os.Chown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("hand %s to user %s: %w", path, a.name, err)
	}
	return nil
}

// checkTraverse fails early with a clear message when the server account
// cannot reach dir because some existing ancestor lacks search permission for
// it: postgres would otherwise die with a terse "permission denied" after we
// have already run initdb.
func (a account) checkTraverse(dir string) error {
	if !a.switched {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Created later by us with mode 0755.
		case err != nil:
			return fmt.Errorf("check access to %s: %w", dir, err)
		case !a.canSearch(fi):
			return fmt.Errorf("%s is not reachable by user %s (uid %d) that postgres runs as, because %s has mode %v: "+
				"put the data directory elsewhere (for example under /tmp or /var/lib) or run `chmod o+x %s`",
				dir, a.name, a.uid, p, fi.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case st.Gid == a.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
