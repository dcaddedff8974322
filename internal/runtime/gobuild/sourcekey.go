// Package gobuild compiles a workspace's Go services for the runtimes that
// run host-built binaries (local processes, and the images of the docker and
// kubernetes runtimes): source keys that tell, without running the
// toolchain, whether a service's binary would change, and one go build per
// module for those that would.
package gobuild

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A source key names everything `go build` reads to make the binary of the
// package in dir, inside the module rooted at root:
//
//   - the toolchain (the go binary found on PATH, by path, size and mtime)
//     and the environment variables that change what it makes;
//   - go.mod and go.sum, which pin every dependency outside the module (the
//     module cache is immutable and verified against go.sum);
//   - every file of dir and of the in-module packages it imports,
//     transitively, except tests, plus the files of their subdirectories
//     that are not packages themselves (what //go:embed can reach).
//
// Imports are read regardless of build constraints, which can only add
// files to the key, never leave one out. Set-ups whose sources live outside
// the module (a go.work, replace directives pointing at directories, a
// vendor directory) get no key: go build decides every time.
//
// A Keyer computes the source keys of several packages of one module,
// reading each file once however many of them import it. Keys are taken
// before building, so that a source edited while go build runs makes the
// next build compile again rather than trust a binary made from the older
// text.
type Keyer struct {
	root, modPath string
	base          []byte // digest of the toolchain, environment, go.mod and go.sum
	err           error  // why the module gets no keys
	pkgs          map[string]pkgDigest
}

type pkgDigest struct {
	rel     string // slash-separated, relative to the module root
	sum     []byte
	imports []string
	err     error
}

// NewKeyer returns a Keyer for the module rooted at root. build are the
// environment variables and flags the caller's go build runs with (such as
// CGO_ENABLED=0, -trimpath): they change the binary, so they are part of
// every key.
func NewKeyer(root string, build ...string) *Keyer {
	k := &Keyer{root: root, pkgs: map[string]pkgDigest{}}
	k.base, k.modPath, k.err = moduleDigest(root, build)
	return k
}

func moduleDigest(root string, build []string) ([]byte, string, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, "", err
	}
	modPath, err := parseModule(gomod)
	if err != nil {
		return nil, "", err
	}
	if err := keyable(root, gomod); err != nil {
		return nil, "", err
	}
	h := sha256.New()
	if err := hashToolchain(h, build); err != nil {
		return nil, "", err
	}
	fmt.Fprintf(h, "mod %s\n", modPath)
	if err := hashFile(h, "go.mod", filepath.Join(root, "go.mod")); err != nil {
		return nil, "", err
	}
	if err := hashFile(h, "go.sum", filepath.Join(root, "go.sum")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	return h.Sum(nil), modPath, nil
}

// Key is the source key of the main package in dir. An error means the
// key cannot be known (see Keyer): the caller then builds every time.
func (k *Keyer) Key(dir string) (string, error) {
	if k.err != nil {
		return "", k.err
	}
	h := sha256.New()
	h.Write(k.base)
	seen := map[string]bool{dir: true}
	queue := []string{dir}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		p, err := k.pkg(d)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "pkg %s %x\n", p.rel, p.sum)
		for _, imp := range p.imports {
			var sub string
			switch {
			case imp == k.modPath:
				sub = k.root
			case strings.HasPrefix(imp, k.modPath+"/"):
				sub = filepath.Join(k.root, filepath.FromSlash(strings.TrimPrefix(imp, k.modPath+"/")))
			default:
				continue
			}
			if !seen[sub] {
				seen[sub] = true
				queue = append(queue, sub)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (k *Keyer) pkg(dir string) (pkgDigest, error) {
	if p, ok := k.pkgs[dir]; ok {
		return p, p.err
	}
	var p pkgDigest
	rel, err := filepath.Rel(k.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		p.err = fmt.Errorf("package %s is outside module %s", dir, k.root)
	} else {
		h := sha256.New()
		p.rel = filepath.ToSlash(rel)
		p.imports, p.err = hashPackage(h, dir, rel)
		p.sum = h.Sum(nil)
	}
	k.pkgs[dir] = p
	return p, p.err
}

// parseModule returns the module path declared by a go.mod.
func parseModule(gomod []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" {
			if p, err := strconv.Unquote(f[1]); err == nil {
				return p, nil
			}
			return f[1], nil
		}
	}
	return "", errors.New("go.mod declares no module")
}

// keyable rejects module set-ups that build from sources the key would not
// see.
func keyable(root string, gomod []byte) error {
	switch w := os.Getenv("GOWORK"); w {
	case "off":
	case "":
		for d := root; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
				return fmt.Errorf("%s is in a workspace (go.work)", root)
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	default:
		return errors.New("GOWORK is set")
	}
	if _, err := os.Stat(filepath.Join(root, "vendor")); err == nil {
		return errors.New("the module vendors its dependencies")
	}
	// A replacement by a directory reads like "=> ./x", "=> ../x" or
	// "=> /abs"; a module replacement names a module path and a version.
	for _, line := range strings.Split(string(gomod), "\n") {
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		t := strings.TrimSpace(target)
		if strings.HasPrefix(t, ".") || filepath.IsAbs(t) {
			return fmt.Errorf("go.mod replaces a module with directory %s", t)
		}
	}
	return nil
}

// toolchainEnv are the variables besides PATH that change what go build
// makes of the same sources.
var toolchainEnv = []string{"GOFLAGS", "GOOS", "GOARCH", "GOAMD64", "GOARM", "GOARM64", "GO386", "GOEXPERIMENT", "GOTOOLCHAIN", "GODEBUG"}

func hashToolchain(h hash.Hash, build []string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	fi, err := os.Stat(goBin)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "go %s %d %d\n", goBin, fi.Size(), fi.ModTime().UnixNano())
	for _, k := range toolchainEnv {
		fmt.Fprintf(h, "env %s=%q\n", k, os.Getenv(k))
	}
	fmt.Fprintf(h, "build %q\n", build)
	// `go env -w` settings live in a file and count like the variables.
	if cfg, err := os.UserConfigDir(); err == nil {
		if err := hashFile(h, "goenv", filepath.Join(cfg, "go", "env")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// hashPackage adds the files of one package directory to h and returns the
// packages its Go files import. Subdirectories without Go files are assets
// //go:embed may reach and are hashed too; subdirectories with Go files are
// packages of their own, included only when imported.
func hashPackage(h hash.Hash, dir, rel string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var imports []string
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case e.IsDir():
			if isPackageDir(path) {
				continue
			}
			if err := hashTree(h, path, filepath.Join(rel, name)); err != nil {
				return nil, err
			}
		case !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0:
			// Sockets, pipes and devices are nothing go build reads.
		case strings.HasSuffix(name, "_test.go"):
		default:
			if err := hashFile(h, filepath.ToSlash(filepath.Join(rel, name)), path); err != nil {
				return nil, err
			}
			if !strings.HasSuffix(name, ".go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				// go build reports it; the key just has to differ, and
				// the file's content is in it.
				continue
			}
			for _, is := range f.Imports {
				if p, err := strconv.Unquote(is.Path.Value); err == nil && !slices.Contains(imports, p) {
					imports = append(imports, p)
				}
			}
		}
	}
	return imports, nil
}

// hashTree adds every file under an asset directory, descending into
// subdirectories that are not packages.
func hashTree(h hash.Hash, dir, rel string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		r := filepath.Join(rel, e.Name())
		switch {
		case e.IsDir():
			if !isPackageDir(path) {
				if err := hashTree(h, path, r); err != nil {
					return err
				}
			}
		case e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0:
			if err := hashFile(h, filepath.ToSlash(r), path); err != nil {
				return err
			}
		}
	}
	return nil
}

func isPackageDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") {
			return true
		}
	}
	return false
}

// hashFile adds a file's name and content to h.
func hashFile(h hash.Hash, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	fmt.Fprintf(h, "file %s %x\n", name, fh.Sum(nil))
	return nil
}
