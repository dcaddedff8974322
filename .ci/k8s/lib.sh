# Functions shared by up.sh, down.sh and check.sh. Sourced, never run.
# shellcheck shell=bash

k8s_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=config.sh
. "$k8s_dir/config.sh"

export PATH="$K8S_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Every kubectl below talks to this cluster, whatever the caller's KUBECONFIG says.
export KUBECONFIG="$K8S_STATE/admin.kubeconfig"

pids_dir="$K8S_STATE/pids"
logs_dir="$K8S_STATE/logs"

lib_t0=$SECONDS
# say prints a progress line with the seconds since the script started.
say() { printf '[%3ss] %s\n' "$((SECONDS - lib_t0))" "$*"; }
die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.5 s; dies naming WHAT and the logs on timeout.
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out waiting for $what (logs: $logs_dir)"
		sleep 0.5
	done
}

# running PID: the process exists and is not a zombie. PID 1 on these machines reaps orphans
# only every second or two, so a bare `kill -0` would wait on corpses.
running() {
	local state
	state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
	[[ -n "$state" && "$state" != Z ]]
}

# alive NAME: the component up.sh started under NAME is still running.
alive() { [[ -f "$pids_dir/$1" ]] && running "$(cat "$pids_dir/$1")"; }

# launch NAME CMD...: starts CMD detached (own session, so it outlives up.sh and a CI step's
# process group) and records its PID; output goes to $logs_dir/NAME.log.
launch() {
	local name=$1
	shift
	setsid nohup "$@" >"$logs_dir/$name.log" 2>&1 </dev/null &
	echo $! >"$pids_dir/$name"
}

# render TEMPLATE OUT: substitutes the cluster settings (and only them: a Corefile or YAML may
# hold other dollar signs) into a template from conf/.
render() {
	local vars='$K8S_STATE $K8S_SOCK $CNI_BIN_DIR $NODE_NAME $API_PORT $KUBELET_PORT
		$KUBELET_HEALTHZ_PORT $PROXY_HEALTHZ_PORT $PROXY_METRICS_PORT $DNS_SVC_IP $CLUSTER_CIDR
		$POD_CIDR $BRIDGE $BRIDGE_IP $CNI_NET $CLUSTER_DOMAIN $COREDNS_HEALTH_PORT
		$COREDNS_READY_PORT $API_RELAY_PORT $PAUSE_IMAGE $COREDNS_IMAGE $STORAGE_CLASS'
	export K8S_STATE K8S_SOCK CNI_BIN_DIR NODE_NAME API_PORT KUBELET_PORT KUBELET_HEALTHZ_PORT \
		PROXY_HEALTHZ_PORT PROXY_METRICS_PORT DNS_SVC_IP CLUSTER_CIDR POD_CIDR BRIDGE BRIDGE_IP \
		CNI_NET CLUSTER_DOMAIN COREDNS_HEALTH_PORT COREDNS_READY_PORT API_RELAY_PORT PAUSE_IMAGE \
		COREDNS_IMAGE STORAGE_CLASS
	envsubst "$vars" <"$k8s_dir/conf/$1" >"$2"
}

# ctr_k8s ARGS...: ctr against the cluster's own containerd, in the namespace the CRI uses.
ctr_k8s() { ctr --address "$K8S_SOCK" -n k8s.io "$@"; }

# our_shims: PIDs of the containerd-shim processes serving OUR containerd (their command line
# names our socket); Docker's shims never match.
our_shims() {
	local f cmd
	for f in /proc/[0-9]*/cmdline; do
		# A process may exit between the glob and the read.
		{ cmd="$(tr '\0' ' ' <"$f")"; } 2>/dev/null || continue
		if [[ "$cmd" == *containerd-shim*" -address $K8S_SOCK "* ]]; then
			f="${f#/proc/}"
			echo "${f%/cmdline}"
		fi
	done
}

# netns_names lists the named network namespaces (CNI names the pods' ones cni-*).
netns_names() {
	local n
	for n in /var/run/netns/*; do
		[[ -e "$n" ]] && echo "${n##*/}"
	done
	return 0
}

# host_snapshot DIR: the host state the cluster changes, normalised for diffing (packet
# counters zeroed). up.sh takes one before it starts; down.sh compares against it.
host_snapshot() {
	local v
	mkdir -p "$1"
	for v in iptables ip6tables; do
		# Tables that hold nothing (built-in chains, ACCEPT, no rule) are left out: iptables
		# creates them on first use and cannot delete them, and they change no packet's fate.
		"$v-save" | sed -E '/^#/d; s/\[[0-9]+:[0-9]+\]/[0:0]/' | awk '
			/^\*/ { table = $0 "\n"; used = 0; next }
			/^COMMIT/ { if (used) printf "%s%s\n", table, $0; next }
			{ table = table $0 "\n"; if ($0 !~ /^:[A-Z]+ ACCEPT /) used = 1 }
		' >"$1/$v"
	done
	# kube-proxy sets route_localnet=1 (NodePorts on 127.0.0.1); kubelet tunes kernel knobs.
	sysctl -e net.ipv4.conf.all.route_localnet net.ipv4.conf.default.route_localnet \
		vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
		kernel.keys.root_maxkeys kernel.keys.root_maxbytes >"$1/sysctl.conf"
	# Pods' network namespaces and host-side veths, to tell ours from others'.
	netns_names >"$1/netns"
	ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 >"$1/veth"
}
