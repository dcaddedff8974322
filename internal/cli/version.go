package cli

import "runtime/debug"

// version is set at build time:
//
//	go build -ldflags "-X github.com/msctl/msctl/internal/cli.version=v1.2.3" ./cmd/msctl
var version string

// versionString returns the linked-in version, else the module version
// recorded by `go install pkg@version`, else "dev".
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
