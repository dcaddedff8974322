#!/usr/bin/env bash
# Installs the Pact FFI library (libpact_ffi 0.4.28) that pact-go v2.4.2 links against.
# pact-go's own installer downloads from GitHub, which is unreachable here, so the library is
# taken from the npm package that ships the same build. npm uses whatever registry it is
# configured with; the tarball is checked against a pinned sha256 so a different artefact
# under the same name is refused. Newer packages (npm >= 19) carry libpact_ffi 0.5.x, which
# pact-go 2.4.2 cannot use.
set -euo pipefail

readonly pkg='@pact-foundation/pact-core-linux-x64-glibc@18.1.0'
readonly sha256='b7cd02d81749ab11a8d388410a2c99d822620f525de9fdeaa32830b8cfe82025'
readonly member='package/prebuilds/linux-x64/libpact_ffi.so'
readonly dest="${PACT_LIB_DIR:-/usr/local/lib}"

if [[ -f "$dest/libpact_ffi.so" ]]; then
	echo "libpact_ffi present in $dest, skipping"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "install-pact: npm is required (apt-get install -y npm)" >&2
	exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$pkg" >/dev/null)
tarball="$(ls "$work"/*.tgz)"
echo "$sha256  $tarball" | sha256sum --check --quiet -

tar -xzf "$tarball" -C "$work" "$member"
install -D -m 0755 "$work/$member" "$dest/libpact_ffi.so"
ldconfig
echo "installed libpact_ffi from $pkg into $dest"
