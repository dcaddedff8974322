package local

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// sharedDataRoot is where a root-run workspace keeps its Postgres cluster
// when the server account cannot reach the workspace (a checkout under
// /root, mode 0700, is the usual case): Postgres refuses to run as root and
// runs as the postgres user instead.
const sharedDataRoot = "/var/lib/msctl"

// pgDataDir returns the Postgres data directory and creates what leads to
// it. It is .msctl/postgres unless that is a link to the cluster's place
// under sharedDataRoot, made the first time a root-run workspace turned out
// to be unreachable for the server account. The link is how later runs
// find the cluster again and how Cleanup knows what to remove.
func (r *Runtime) pgDataDir() (string, error) {
	link := r.pgDir()
	fi, err := os.Lstat(link)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(link)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", link, err)
		}
		if home := filepath.Dir(target); filepath.Dir(home) == sharedDataRoot {
			// Recreated if someone removed it behind our back.
			return target, r.prepareShared(home)
		}
		return target, nil // a link someone made by hand: theirs to keep
	case err == nil:
		return link, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("check %s: %w", link, err)
	case os.Geteuid() != 0 || othersCanReach(r.dir):
		return link, nil
	}
	sum := sha256.Sum256([]byte(r.dir))
	home := filepath.Join(sharedDataRoot, hex.EncodeToString(sum[:6]))
	if err := r.prepareShared(home); err != nil {
		return "", err
	}
	// Say whose cluster it is, for whoever finds the directory later.
	if err := os.WriteFile(filepath.Join(home, "workspace"), []byte(filepath.Dir(r.dir)+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("postgres data: %w", err)
	}
	target := filepath.Join(home, "postgres")
	if err := os.Symlink(target, link); err != nil {
		return "", fmt.Errorf("postgres data: link %s: %w", link, err)
	}
	r.log.Info("postgres data kept outside the workspace: the postgres user cannot reach it", "dir", target, "link", link)
	return target, nil
}

// prepareShared creates a workspace's directory under sharedDataRoot,
// searchable by the server account; the cluster inside stays 0700.
func (r *Runtime) prepareShared(home string) error {
	for _, d := range []string{sharedDataRoot, home} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("postgres data: %w", err)
		}
		// Whatever the umask made of it.
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("postgres data: %w", err)
		}
	}
	return nil
}

// othersCanReach reports whether every directory from the root down to dir
// lets any user search it. It is stricter than what the server account
// needs (it could own a directory or be in its group), which only ever
// moves the data to sharedDataRoot needlessly, never leaves it unreachable.
func othersCanReach(dir string) bool {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if filepath.Dir(p) == p {
			return true
		}
	}
}

// removePGData removes the Postgres cluster and its password file, wherever
// pgDataDir put them.
func (r *Runtime) removePGData() error {
	link := r.pgDir()
	fi, err := os.Lstat(link)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(link)
		if err != nil {
			return fmt.Errorf("read %s: %w", link, err)
		}
		// Only ever a directory we made: one level below sharedDataRoot.
		home := filepath.Dir(target)
		if filepath.Dir(home) != sharedDataRoot {
			return fmt.Errorf("%s points at %s, not under %s: remove it by hand", link, target, sharedDataRoot)
		}
		if err := os.RemoveAll(home); err != nil {
			return err
		}
	}
	return errors.Join(os.RemoveAll(link), os.RemoveAll(link+".password"))
}
