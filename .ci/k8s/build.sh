#!/usr/bin/env bash
# Builds the binaries of the single-node test cluster from the Go module proxy (no registry,
# no release tarballs are reachable here) and caches them by version outside the clone:
#
#   $MSCTL_K8S_CACHE/bin/   kube-apiserver kube-controller-manager kube-scheduler kubelet
#                           kube-proxy kubectl etcd coredns pause
#   $MSCTL_K8S_CACHE/.complete   written last; when present (and every binary with it) the
#                                build is skipped, so a warm CI run costs about a second.
#
# The Go sources are compiled in throwaway wrapper modules under $MSCTL_K8S_CACHE/src, never in
# the project's go.mod: Kubernetes' dependency graph must not leak into msctl's.
# Cold: ~30 min on 2 cores (kube-apiserver alone ~20 min, ~2.4 GB RAM). The Go build cache is
# shared, so a rebuild after the cache dir was wiped takes ~1-2 min.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=config.sh
. "$here/config.sh"

export PATH="/usr/local/go/bin:$PATH"
# -mod=mod: the wrapper modules have no vendor dir and their go.sum is written by tidy.
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOTOOLCHAIN=local

bin="$MSCTL_K8S_CACHE/bin"
src="$MSCTL_K8S_CACHE/src"
stamp="$MSCTL_K8S_CACHE/.complete"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
	etcd coredns pause)

# The stamp records what was built; a change of any pinned version rebuilds.
recipe="kubernetes=$K8S_VERSION etcd=$KV_STORE_VERSION coredns=$COREDNS_VERSION"

cached() {
	[[ -f "$stamp" && "$(cat "$stamp")" == "$recipe" ]] || return 1
	local b
	for b in "${binaries[@]}"; do
		[[ -x "$bin/$b" ]] || return 1
	done
}

if cached; then
	echo "k8s binaries $K8S_VERSION cached in $bin"
	exit 0
fi

start=$SECONDS
t0=$SECONDS
lap() { echo "build: $1 in $((SECONDS - t0))s"; t0=$SECONDS; }

rm -f "$stamp"
mkdir -p "$bin" "$src/kube" "$src/coredns" "$src/pause"

# --- Kubernetes + etcd ----------------------------------------------------------------------
# k8s.io/kubernetes' own go.mod points its staging modules (k8s.io/api, client-go, ...) at
# ./staging/src/..., which does not exist in the module zip; every one of them must be required
# and replaced by its published v0.X.Y tag. sample-cli-plugin and sample-controller are not
# published for this release and nothing we build imports them.
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
	cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
	cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice
	externaljwt kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl
	kubelet metrics mount-utils pod-security-admission sample-apiserver streaming)
staging_version="v0.${K8S_VERSION#v1.}"

cd "$src/kube"
{
	echo "module msctl.local/k8s-wrapper"
	echo
	echo "go 1.26.0"
	echo
	echo "require ("
	echo "	k8s.io/kubernetes $K8S_VERSION"
	echo "	go.etcd.io/etcd/server/v3 $KV_STORE_VERSION"
	for m in "${staging[@]}"; do echo "	k8s.io/$m $staging_version"; done
	echo ")"
	echo
	echo "replace ("
	for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
	echo ")"
} >go.mod
# The tools pattern: blank imports of the main packages keep `go mod tidy` from dropping them.
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
go mod tidy
lap "kubernetes module graph"

# Stamp the version the way Kubernetes' release build does, so `kubectl version` and the
# apiserver's /version say v1.37.2 instead of v0.0.0-master.
minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean"
done
# One go build for all six: their shared packages compile once.
# -p 2 matches the cores.
go build -p 2 -trimpath -ldflags "$ldflags" -o "$bin/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
	k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
lap "kubernetes binaries"

go build -p 2 -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
lap "etcd"

# --- CoreDNS --------------------------------------------------------------------------------
# Its own wrapper: CoreDNS pins other versions of shared dependencies (client-go among them).
cd "$src/coredns"
printf 'module msctl.local/coredns-wrapper\n\ngo 1.26.0\n\nrequire github.com/coredns/coredns %s\n' \
	"$COREDNS_VERSION" >go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/coredns/coredns"\n' >tools.go
go mod tidy
go build -p 2 -trimpath -ldflags "-s -w" -o "$bin/coredns" github.com/coredns/coredns
lap "coredns"

# --- pause ----------------------------------------------------------------------------------
# The pod sandbox's image cannot be pulled; ours is a static binary that holds the namespaces
# and reaps orphans (see pause/main.go).
cd "$src/pause"
printf 'module msctl.local/pause\n\ngo 1.26.0\n' >go.mod
cp "$here/pause/main.go" main.go
go build -trimpath -ldflags "-s -w" -o "$bin/pause" .
lap "pause"

echo "$recipe" >"$stamp"
du -sh "$bin"
echo "k8s binaries $K8S_VERSION built in $((SECONDS - start))s into $bin"
