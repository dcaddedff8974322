#!/usr/bin/env bash
# mkimage.sh REF OUT.tar ROOTDIR ENTRYPOINT...
#
# Writes a single-layer OCI image archive holding ROOTDIR (FROM scratch), named REF, which
# `ctr images import` loads into the node's containerd. The cluster's own images (pause,
# CoreDNS, busybox) are made this way: no registry is reachable, and no Docker is needed.
# The archive is reproducible: fixed owners and timestamps, sorted entries.
set -euo pipefail

ref=$1 out=$2 root=$3
shift 3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
blobs="$work/blobs/sha256"
mkdir -p "$blobs"

# blob FILE: moves FILE into the blob store under its digest; prints "DIGEST SIZE".
blob() {
	local sum size
	sum="$(sha256sum "$1" | cut -d' ' -f1)"
	size="$(stat -c %s "$1")"
	mv "$1" "$blobs/$sum"
	echo "sha256:$sum $size"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer" .
read -r layer_digest layer_size < <(blob "$work/layer")

entrypoint="$(printf '"%s",' "$@")"
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":[%s]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
	"${entrypoint%,}" "$layer_digest" >"$work/config"
read -r config_digest config_size < <(blob "$work/config")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
	"$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$work/manifest"
read -r manifest_digest manifest_size < <(blob "$work/manifest")

# containerd names the imported image after the io.containerd.image.name annotation.
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
	"$manifest_digest" "$manifest_size" "$ref" "${ref##*:}" >"$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$out" oci-layout index.json blobs
