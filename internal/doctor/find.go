package doctor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
