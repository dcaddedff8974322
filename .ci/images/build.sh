#!/usr/bin/env bash
# Builds the offline stand-ins for the infra images msctl defaults to (postgres:15, nats:2.15,
# bitnami/etcd:3.5). No container registry is reachable here, so nothing can be pulled: a
# Debian base is made with debootstrap from the machine's own apt mirror and imported, and each
# stand-in installs the Debian package of its server on top of it — except nats, whose server
# is compiled from the nats-server module pinned in go.mod (Debian's 2.9 is too old).
#
# Idempotent: an image whose tag exists is kept. A stand-in built from an older recipe (its
# dev.msctl.recipe label differs from the files beside this script) is rebuilt; a real
# upstream image under the same tag is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly here
readonly suite=bookworm
readonly base_tag="msctl/debian-base:$suite"
# directory under $here → tag of the official image it stands in for
readonly -a standins=(
	"postgres=postgres:15"
	"nats=nats:2.15"
	"etcd=bitnami/etcd:3.5"
)

log() { printf 'images: %s\n' "$*"; }

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

# apt_mirror prints the first Debian mirror URI the machine's apt sources use for $suite. It is
# read at run time so that no mirror host is written into the repository.
apt_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$f" ]] || continue
		# deb822: blank-line separated stanzas with "URIs:" and "Suites:" fields.
		uri="$(awk -v suite="$suite" '
			BEGIN { RS = ""; FS = "\n" }
			{
				uris = ""; ok = 0; deb = 0
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^[Tt]ypes:/ && $i ~ /[[:space:]]deb([[:space:]]|$)/) deb = 1
					if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[[:space:]]*/, "", uris) }
					if ($i ~ /^Suites:/) {
						n = split($i, s, /[[:space:]]+/)
						for (j = 2; j <= n; j++) if (s[j] == suite) ok = 1
					}
				}
				if (deb && ok && uris != "") { split(uris, u, /[[:space:]]+/); print u[1]; exit }
			}' "$f")"
		if [[ -n "$uri" ]]; then
			echo "$uri"
			return
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$f" ]] || continue
		# one-line style: deb [options] uri suite components...
		uri="$(awk -v suite="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == suite) { print $i; exit }
			}' "$f")"
		if [[ -n "$uri" ]]; then
			echo "$uri"
			return
		fi
	done
	return 1
}

# copy_apt_config makes apt inside the images use what the host uses: the same sources
# (security updates included), their keyrings, and the Acquire settings (a snapshot mirror
# needs its Valid-Until check relaxed, for instance).
copy_apt_config() {
	local rootfs="$1" f key
	rm -f "$rootfs/etc/apt/sources.list"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -s "$f" ]] || continue
		install -D -m 0644 "$f" "$rootfs$f"
		for key in $(grep -ohE '(Signed-By:|signed-by=)[[:space:]]*/[^] ]+' "$f" | sed -E 's/^(Signed-By:|signed-by=)[[:space:]]*//'); do
			if [[ -f "$key" && ! -e "$rootfs$key" ]]; then
				install -D -m 0644 "$key" "$rootfs$key"
			fi
		done
	done
	for f in /etc/apt/trusted.gpg.d/*; do
		[[ -f "$f" ]] && install -D -m 0644 "$f" "$rootfs$f"
	done
	for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
		if [[ -f "$f" ]] && grep -q '^[[:space:]]*Acquire' "$f"; then
			install -D -m 0644 "$f" "$rootfs$f"
		fi
	done
}

build_base() {
	if ! command -v debootstrap >/dev/null 2>&1; then
		log "installing debootstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	local mirror
	if ! mirror="$(apt_mirror)"; then
		echo "images: no apt source for $suite found in /etc/apt; cannot debootstrap" >&2
		exit 1
	fi

	local work start
	work="$(mktemp -d /var/tmp/msctl-rootfs.XXXXXX)"
	# shellcheck disable=SC2064 # expand now: $work is local
	trap "rm -rf '$work'" EXIT
	start=$SECONDS
	log "debootstrap $suite (minbase) into $work/rootfs"
	if ! debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 30 "$work/debootstrap.log" >&2
		[[ -f "$work/rootfs/debootstrap/debootstrap.log" ]] && tail -n 30 "$work/rootfs/debootstrap/debootstrap.log" >&2
		exit 1
	fi
	copy_apt_config "$work/rootfs"
	rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
	log "debootstrap done in $((SECONDS - start))s; importing as $base_tag"
	tar -C "$work/rootfs" -c . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		--change 'LABEL org.opencontainers.image.description="msctl offline stand-in" dev.msctl.standin=true' \
		- "$base_tag" >/dev/null
	rm -rf "$work"
	trap - EXIT
	log "built $base_tag in $((SECONDS - start))s"
}

# recipe_hash identifies the build inputs of one stand-in, so a changed recipe is rebuilt; for
# nats that includes the nats-server version pinned in go.mod.
recipe_hash() {
	{
		(cd "$here/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
		[[ "$1" != nats ]] || nats_version
	} | sha256sum | cut -c1-16
}

nats_version() { (cd "$here/../.." && go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2); }

# build_context prints a directory holding everything docker build needs for one stand-in.
build_context() {
	local dir="$1" ctx
	if [[ "$dir" != nats ]]; then
		echo "$here/$dir"
		return
	fi
	ctx="$(mktemp -d /var/tmp/msctl-nats-ctx.XXXXXX)"
	cp "$here/nats/"* "$ctx/"
	(cd "$here/../.." && CGO_ENABLED=0 go build -trimpath -o "$ctx/nats-server" github.com/nats-io/nats-server/v2)
	echo "$ctx"
}

build_standin() {
	local dir="$1" tag="$2" hash label start old=
	hash="$(recipe_hash "$dir")"
	if has_image "$tag"; then
		label="$(docker image inspect -f '{{index .Config.Labels "dev.msctl.recipe"}}' "$tag" 2>/dev/null || true)"
		if [[ -z "$label" || "$label" == "$hash" ]]; then
			log "image $tag present, skipping"
			return
		fi
		log "image $tag was built from another recipe ($label), rebuilding"
		old="$(docker image inspect -f '{{.Id}}' "$tag")"
	fi
	has_image "$base_tag" || build_base
	start=$SECONDS
	log "building $tag"
	local ctx
	ctx="$(build_context "$dir")"
	# Build steps run apt-get against the same mirror as the host; host networking avoids
	# depending on the bridge's NAT and DNS.
	if ! DOCKER_BUILDKIT=0 docker build --network host --label "dev.msctl.recipe=$hash" \
		-t "$tag" "$ctx" >"/tmp/msctl-image-$dir.log" 2>&1; then
		tail -n 40 "/tmp/msctl-image-$dir.log" >&2
		exit 1
	fi
	[[ "$ctx" == "$here/$dir" ]] || rm -rf "$ctx"
	log "built $tag in $((SECONDS - start))s"
	# The replaced build is now untagged; a container still using it keeps it alive.
	if [[ -n "$old" ]]; then
		docker rmi "$old" >/dev/null 2>&1 || true
	fi
}

main() {
	if ! docker info >/dev/null 2>&1; then
		echo "images: the Docker daemon is not reachable (docker info failed)" >&2
		exit 1
	fi
	local start=$SECONDS entry
	for entry in "${standins[@]}"; do
		build_standin "${entry%%=*}" "${entry#*=}"
	done
	log "done in $((SECONDS - start))s"
}

main "$@"
