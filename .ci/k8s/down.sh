#!/usr/bin/env bash
# Tears the test cluster down and proves it left nothing: no process, shim, mount, network
# namespace, veth, bridge, kubepods cgroup or KUBE-*/CNI-* iptables chain; iptables, ip6tables
# and the sysctls it touched are identical to before up.sh. Docker's processes, containerd and
# iptables rules are never touched: only what up.sh recorded (PIDs, its containerd's socket,
# the chains it refused to start over) is removed.
#
# Idempotent: with no cluster there is nothing to do. The last run's logs stay in
# $K8S_HOME/last-logs.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

before="$K8S_STATE/before"

# stop NAME...: SIGTERM to each, up to 10 s to exit, then SIGKILL. Each PID is the one launch
# recorded; nothing is matched by name.
stop() {
	local name pid i
	local -a stopping=()
	for name in "$@"; do
		alive "$name" || continue
		pid="$(cat "$pids_dir/$name")"
		# socat forks a child per connection; they would keep relaying after the listener.
		pkill -TERM -P "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null && stopping+=("$name:$pid")
	done
	for i in "${stopping[@]}"; do
		name="${i%%:*}" pid="${i#*:}"
		for _ in {1..100}; do
			running "$pid" || break
			sleep 0.1
		done
		if running "$pid"; then
			echo "  $name ($pid) ignored SIGTERM: killed"
			kill -9 "$pid" 2>/dev/null
		fi
	done
	for name in "$@"; do rm -f "$pids_dir/$name"; done
}

# delete_pods lets kubelet stop every pod the normal way, so the CNI plugins release their
# veths, addresses and per-pod iptables rules themselves. The controllers are stopped first:
# nothing recreates what is deleted.
delete_pods() {
	alive kube-apiserver && alive kubelet || return 0
	timeout 60 kubectl delete pods --all --all-namespaces --grace-period=1 --wait=true >/dev/null 2>&1 ||
		echo "  pods did not all stop within 60s: killing their containers"
}

# kill_containers removes whatever still runs in OUR containerd (by its socket).
kill_containers() {
	[[ -S "$K8S_SOCK" ]] && alive containerd || return 0
	local id
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
	sleep 0.5
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1; done
	for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1; done
}

# host_cleanup undoes what the cluster did to the host outside its processes.
host_cleanup() {
	local m n ipt table chain
	grep -F " $K8S_HOME/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	# The pods' network namespaces that appeared while the cluster ran (CNI names them cni-*);
	# deleting one deletes its veth pair with it.
	if [[ -f "$before/netns" ]]; then
		for n in $(netns_names | grep -vxF -f "$before/netns"); do
			[[ "$n" == cni-* ]] || continue
			umount "/var/run/netns/$n" 2>/dev/null
			rm -f "/var/run/netns/$n"
		done
	fi
	# Also removes the service-CIDR route up.sh put on it.
	ip link delete "$BRIDGE" 2>/dev/null
	# cgroup v1 hierarchies kubelet made (cgroupfs driver); rmdir only removes empty ones.
	for m in /sys/fs/cgroup/*/kubepods; do
		[[ -d "$m" ]] && find "$m" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	# Every KUBE-*/CNI-* chain is ours: up.sh refuses to start when one exists. First the jumps
	# from the built-in chains, then the chains (flushed before deleted: they jump to each other).
	for ipt in iptables ip6tables; do
		for table in nat filter mangle raw; do
			"$ipt-save" -t "$table" 2>/dev/null |
				grep -E '^-A (PREROUTING|INPUT|OUTPUT|FORWARD|POSTROUTING) .*-j (KUBE-|CNI-)' |
				sed 's/^-A/-D/' | while read -r rule; do
					eval "$ipt -t $table $rule"
				done
			local -a chains=()
			mapfile -t chains < <("$ipt-save" -t "$table" 2>/dev/null | grep -oE '^:(KUBE-|CNI-)[^ ]+' | tr -d :)
			for chain in "${chains[@]}"; do "$ipt" -t "$table" -F "$chain"; done
			for chain in "${chains[@]}"; do "$ipt" -t "$table" -X "$chain"; done
		done
	done
	# kube-proxy's route_localnet=1 and kubelet's kernel tunables back to what they were.
	[[ -f "$before/sysctl.conf" ]] && sysctl -q -p "$before/sysctl.conf"
}

# verify prints each leftover and fails when there is one.
verify() {
	local clean=0 f v
	for f in "$pids_dir"/*; do
		[[ -e "$f" ]] && running "$(cat "$f")" && echo "left: process ${f##*/} ($(cat "$f"))" && clean=1
	done
	for f in $(our_shims); do echo "left: containerd shim $f" && clean=1; done
	grep -F " $K8S_HOME/" /proc/mounts | sed 's/^/left: mount /' | grep . && clean=1
	ip link show "$BRIDGE" >/dev/null 2>&1 && echo "left: bridge $BRIDGE" && clean=1
	for f in /sys/fs/cgroup/*/kubepods; do
		[[ -d "$f" ]] && echo "left: cgroup $f" && clean=1
	done
	if [[ -f "$before/netns" ]]; then
		netns_names | grep -vxF -f "$before/netns" | sed 's/^/left: netns /' | grep . && clean=1
		ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 |
			grep -vxF -f "$before/veth" | sed 's/^/left: veth /' | grep . && clean=1
		host_snapshot "$K8S_STATE/after"
		for v in iptables ip6tables sysctl.conf; do
			if ! diff -u "$before/$v" "$K8S_STATE/after/$v" >"$K8S_STATE/after/$v.diff"; then
				echo "left: $v differs from before up.sh:"
				cat "$K8S_STATE/after/$v.diff"
				clean=1
			fi
		done
	fi
	return "$clean"
}

main() {
	[[ $EUID -eq 0 ]] || die "run as root"
	if [[ ! -d "$K8S_STATE" ]]; then
		rm -f "$K8S_ENV_FILE" "$K8S_KUBECONFIG"
		say "no cluster: nothing to tear down"
		return
	fi
	# First of all, tests must stop finding the cluster.
	rm -f "$K8S_ENV_FILE" "$K8S_KUBECONFIG"
	stop pv-recycler kube-controller-manager kube-scheduler
	delete_pods
	say "pods deleted"
	stop kube-proxy kubelet
	kube-proxy --cleanup >/dev/null 2>&1
	kill_containers
	stop containerd
	local pid
	for pid in $(our_shims); do kill -9 "$pid" 2>/dev/null; done
	# etcd last: the apiserver hangs on shutdown without it.
	stop api-relay kube-apiserver
	stop etcd
	say "processes stopped"
	host_cleanup
	say "host state restored"

	rm -rf "$K8S_HOME/last-logs"
	cp -a "$logs_dir" "$K8S_HOME/last-logs"
	if ! verify; then
		cp -a "$K8S_STATE/after" "$K8S_HOME/last-logs/" 2>/dev/null
		die "teardown left the above; $K8S_STATE kept for inspection"
	fi
	rm -rf "$K8S_STATE" "$K8S_PV_DIR"
	say "cluster down: nothing left, iptables and sysctls as before up.sh"
}

main "$@"
