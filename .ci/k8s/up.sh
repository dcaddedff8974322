#!/usr/bin/env bash
# Starts the single-node Kubernetes test cluster from the binaries build.sh cached, loopback
# only, and records it for the tests in $K8S_ENV_FILE (see README.md). Run as root.
#
# Idempotent: a cluster that is already up and healthy is left alone; the remains of one that
# is not (a component died, a half-finished start) are torn down first with down.sh.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

components=(etcd kube-apiserver containerd api-relay kube-controller-manager kube-scheduler
	kubelet kube-proxy pv-recycler)
pki="$K8S_STATE/pki"

healthy() {
	local c
	for c in "${components[@]}"; do alive "$c" || return 1; done
	[[ -f "$K8S_ENV_FILE" ]] &&
		kubectl get --raw /readyz >/dev/null 2>&1 &&
		[[ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

install_packages() {
	local -a need=()
	command -v containerd >/dev/null || need+=(containerd)
	command -v runc >/dev/null || need+=(runc)
	[[ -x "$CNI_BIN_DIR/bridge" ]] || need+=(containernetworking-plugins)
	command -v socat >/dev/null || need+=(socat)
	command -v conntrack >/dev/null || need+=(conntrack)
	command -v iptables >/dev/null || need+=(iptables)
	command -v openssl >/dev/null || need+=(openssl)
	command -v envsubst >/dev/null || need+=(gettext-base)
	[[ -x /bin/busybox ]] || need+=(busybox-static)
	if ((${#need[@]})); then
		say "installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
	fi
}

# preflight refuses to start over somebody else's networking: it would be torn down with ours.
preflight() {
	local b
	for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd coredns pause; do
		[[ -x "$K8S_BIN/$b" ]] || die "missing $K8S_BIN/$b: run .ci/k8s/build.sh first"
	done
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		die "bridge $BRIDGE exists without a cluster: run .ci/k8s/down.sh"
	fi
	if { iptables-save; ip6tables-save; } | grep -qE '^:(KUBE-|CNI-)'; then
		die "KUBE-*/CNI-* iptables chains exist: another Kubernetes runs on this host, or a teardown failed (see $K8S_HOME/last-logs)"
	fi
}

# cert NAME SUBJECT [SANS]: an ECDSA key and certificate signed by the cluster CA; with SANs it
# is a server certificate too.
cert() {
	local ext="extendedKeyUsage=clientAuth"
	[[ -n "${3:-}" ]] && ext="subjectAltName=$3"$'\n'"extendedKeyUsage=serverAuth,clientAuth"
	openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key"
	openssl req -new -key "$pki/$1.key" -subj "$2" -out "$pki/$1.csr"
	openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
		-days 365 -extfile <(echo "$ext") -out "$pki/$1.crt" 2>/dev/null
	rm "$pki/$1.csr"
}

make_pki() {
	mkdir -p "$pki"
	openssl ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key"
	openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=msctl-test-ca" -days 365 -out "$pki/ca.crt"
	# Loopback and the in-cluster names only: nothing names the machine's external address.
	cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:$KUBE_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
	cert admin "/O=system:masters/CN=msctl-test-admin"
	cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
	# The node's client identity (Node authorizer) and kubelet's serving certificate in one.
	cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:127.0.0.1,DNS:localhost"
	openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
	openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# kubeconfig CERT OUT: a self-contained kubeconfig (certificates embedded) for context
# $K8S_CONTEXT, authenticating with the client certificate CERT.
kubeconfig() {
	cat >"$2" <<-YAML
		apiVersion: v1
		kind: Config
		clusters:
		- name: $K8S_CONTEXT
		  cluster:
		    server: https://127.0.0.1:$API_PORT
		    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
		users:
		- name: $K8S_CONTEXT-$1
		  user:
		    client-certificate-data: $(base64 -w0 "$pki/$1.crt")
		    client-key-data: $(base64 -w0 "$pki/$1.key")
		contexts:
		- name: $K8S_CONTEXT
		  context: {cluster: $K8S_CONTEXT, user: $K8S_CONTEXT-$1}
		current-context: $K8S_CONTEXT
	YAML
	chmod 0600 "$2"
}

# images builds the OCI archives of the cluster's own images once per cache directory.
images() {
	local dir="$MSCTL_K8S_CACHE/images" root
	mkdir -p "$dir"
	root="$(mktemp -d)"
	if [[ ! -f "$dir/pause.tar" ]]; then
		install -D "$K8S_BIN/pause" "$root/pause/pause"
		"$k8s_dir/mkimage.sh" "$PAUSE_IMAGE" "$dir/pause.tar.tmp" "$root/pause" /pause
		mv "$dir/pause.tar.tmp" "$dir/pause.tar"
	fi
	if [[ ! -f "$dir/coredns.tar" ]]; then
		install -D "$K8S_BIN/coredns" "$root/coredns/coredns"
		"$k8s_dir/mkimage.sh" "$COREDNS_IMAGE" "$dir/coredns.tar.tmp" "$root/coredns" /coredns
		mv "$dir/coredns.tar.tmp" "$dir/coredns.tar"
	fi
	if [[ ! -f "$dir/busybox.tar" ]]; then
		# Debian's static busybox, one symlink per applet, so pods can run `sh -c`, httpd,
		# wget and nslookup by name.
		local applet
		install -D /bin/busybox "$root/busybox/bin/busybox"
		for applet in $(/bin/busybox --list); do
			[[ "$applet" == busybox ]] || ln -s busybox "$root/busybox/bin/$applet"
		done
		install -d -m 1777 "$root/busybox/tmp"
		"$k8s_dir/mkimage.sh" "$BUSYBOX_IMAGE" "$dir/busybox.tar.tmp" "$root/busybox" /bin/sh
		mv "$dir/busybox.tar.tmp" "$dir/busybox.tar"
	fi
	rm -rf "$root"
}

start_control_plane() {
	launch etcd etcd --name msctl-test --data-dir "$K8S_STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$KV_PORT" --advertise-client-urls "http://127.0.0.1:$KV_PORT" \
		--listen-peer-urls "http://127.0.0.1:$KV_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$KV_PEER_PORT" \
		--initial-cluster "msctl-test=http://127.0.0.1:$KV_PEER_PORT" --log-level warn
	# --advertise-address=127.0.0.1 needs --endpoint-reconciler-type=none: the reconciler would
	# publish 127.0.0.1 as the "kubernetes" endpoint, which validation rejects (addons.yaml
	# points it at the API relay instead). kubectl logs/exec must dial the node by InternalIP,
	# not by its host name, which resolves to the wrong loopback address.
	# PodLogsQuerySplitStreams (alpha; kubelet.yaml.in enables it too) lets pods/log return
	# stdout and stderr apart, which the runtime conformance suite checks.
	launch kube-apiserver kube-apiserver \
		--etcd-servers="http://127.0.0.1:$KV_PORT" \
		--bind-address=127.0.0.1 --secure-port="$API_PORT" --advertise-address=127.0.0.1 \
		--endpoint-reconciler-type=none \
		--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
		--client-ca-file="$pki/ca.crt" \
		--service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
		--service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--authorization-mode=Node,RBAC --allow-privileged=true \
		--kubelet-client-certificate="$pki/apiserver-kubelet.crt" \
		--kubelet-client-key="$pki/apiserver-kubelet.key" \
		--kubelet-certificate-authority="$pki/ca.crt" \
		--kubelet-preferred-address-types=InternalIP,Hostname \
		--feature-gates=PodLogsQuerySplitStreams=true \
		--profiling=false
}

# start_network creates the CNI bridge before any pod exists, so CoreDNS and the API relay can
# bind its gateway address (the bridge plugin adopts an existing bridge).
start_network() {
	ip link add "$BRIDGE" type bridge
	ip addr add "$BRIDGE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# A ClusterIP packet kube-proxy has not translated (yet) dies on the bridge instead of
	# taking the default route out of the machine.
	ip route add "$SERVICE_CIDR" dev "$BRIDGE"
	launch api-relay socat "TCP-LISTEN:$API_RELAY_PORT,bind=$BRIDGE_IP,fork,reuseaddr" "TCP:127.0.0.1:$API_PORT"
}

start_node() {
	local admin="$K8S_STATE/admin.kubeconfig"
	launch kube-controller-manager kube-controller-manager --kubeconfig="$admin" \
		--authentication-kubeconfig="$admin" --authorization-kubeconfig="$admin" \
		--bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
		--service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
		--cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
		--use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
		--leader-elect=false
	launch kube-scheduler kube-scheduler --kubeconfig="$admin" \
		--authentication-kubeconfig="$admin" --authorization-kubeconfig="$admin" \
		--bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false
	# kubelet refuses --node-ip=127.0.0.1 (loopback), but an IP given as the host name becomes
	# the node's InternalIP unvalidated.
	launch kubelet kubelet --config="$K8S_STATE/kubelet/config.yaml" \
		--kubeconfig="$K8S_STATE/node.kubeconfig" --root-dir="$K8S_STATE/kubelet/root" \
		--hostname-override="$NODE_NAME" --v=1
	launch kube-proxy kube-proxy --config="$K8S_STATE/kube-proxy.yaml"
}

# persistent_volumes creates the static pool behind the default StorageClass (README.md says
# why a pool): world-writable directories, since hostPath ignores fsGroup and the workloads
# run as assorted non-root users.
persistent_volumes() {
	local i name
	for ((i = 1; i <= PV_COUNT; i++)); do
		printf -v name 'msctl-pv-%02d' "$i"
		install -d -m 0777 "$K8S_PV_DIR/$name"
		cat <<-YAML
			---
			apiVersion: v1
			kind: PersistentVolume
			metadata:
			  name: $name
			  labels: {msctl-ci/pool: hostpath}
			spec:
			  storageClassName: $STORAGE_CLASS
			  capacity: {storage: $PV_SIZE}
			  accessModes: [ReadWriteOnce, ReadWriteMany, ReadOnlyMany]
			  persistentVolumeReclaimPolicy: Retain
			  hostPath: {path: $K8S_PV_DIR/$name, type: Directory}
		YAML
	done | kubectl apply -f - >/dev/null
}

dns_answers() {
	/bin/busybox nslookup "kubernetes.default.svc.$CLUSTER_DOMAIN" "$DNS_SVC_IP" 2>/dev/null | grep -q "$KUBE_SVC_IP"
}

write_env() {
	kubeconfig admin "$K8S_KUBECONFIG.tmp"
	mv "$K8S_KUBECONFIG.tmp" "$K8S_KUBECONFIG"
	cat >"$K8S_ENV_FILE.tmp" <<-ENV
		# The msctl test cluster (.ci/k8s/up.sh); read by internal/testenv. Removed by down.sh.
		MSCTL_K8S_KUBECONFIG=$K8S_KUBECONFIG
		MSCTL_K8S_CONTEXT=$K8S_CONTEXT
		MSCTL_K8S_CONTAINERD_SOCK=$K8S_SOCK
		MSCTL_K8S_CTR=$(command -v ctr)
		MSCTL_K8S_KUBECTL=$K8S_BIN/kubectl
		MSCTL_K8S_STORAGE_CLASS=$STORAGE_CLASS
		MSCTL_K8S_TEST_IMAGE=$BUSYBOX_IMAGE
	ENV
	mv "$K8S_ENV_FILE.tmp" "$K8S_ENV_FILE"
}

main() {
	[[ $EUID -eq 0 ]] || die "run as root (it starts kubelet and changes iptables)"
	if [[ -d "$K8S_STATE" ]]; then
		if healthy; then
			say "cluster already up"
			echo "export KUBECONFIG=$K8S_KUBECONFIG"
			return
		fi
		say "an unhealthy cluster is left over: tearing it down first"
		"$k8s_dir/down.sh"
	fi
	install_packages
	preflight

	mkdir -p "$K8S_STATE"/{logs,pids,cni/net.d,cni/ipam,kubelet/root,containerd/opt}
	host_snapshot "$K8S_STATE/before"
	make_pki
	kubeconfig admin "$K8S_STATE/admin.kubeconfig"
	kubeconfig node "$K8S_STATE/node.kubeconfig"
	render containerd.toml.in "$K8S_STATE/containerd/config.toml"
	render cni.conflist.in "$K8S_STATE/cni/net.d/10-$CNI_NET.conflist"
	render kubelet.yaml.in "$K8S_STATE/kubelet/config.yaml"
	render kube-proxy.yaml.in "$K8S_STATE/kube-proxy.yaml"
	render Corefile.in "$K8S_STATE/Corefile"
	render addons.yaml.in "$K8S_STATE/addons.yaml"
	echo "nameserver $DNS_SVC_IP" >"$K8S_STATE/kubelet/resolv.conf"
	images
	say "pki, configs and images ready"

	start_control_plane
	launch containerd containerd --config "$K8S_STATE/containerd/config.toml"
	start_network
	wait_for 30 containerd ctr_k8s version
	local image
	for image in pause coredns busybox; do
		ctr_k8s images import "$MSCTL_K8S_CACHE/images/$image.tar" >/dev/null
	done
	say "containerd up, images imported"
	wait_for 60 kube-apiserver kubectl get --raw /readyz
	say "kube-apiserver ready"

	start_node
	wait_for 30 "namespace kube-system" kubectl get namespace kube-system
	kubectl apply -f "$K8S_STATE/addons.yaml" >/dev/null
	kubectl -n kube-system create configmap coredns --from-file=Corefile="$K8S_STATE/Corefile" >/dev/null
	persistent_volumes
	launch pv-recycler "$k8s_dir/pv-recycler.sh"
	say "add-ons and $PV_COUNT persistent volumes applied"

	wait_for 60 "node $NODE_NAME" kubectl get node "$NODE_NAME"
	kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=60s >/dev/null
	# Pods can be created only once the controller-manager made the namespace's ServiceAccount.
	wait_for 30 "ServiceAccount default/default" kubectl -n default get serviceaccount default
	say "node $NODE_NAME Ready"
	wait_for 90 "cluster DNS on $DNS_SVC_IP" dns_answers
	say "cluster DNS answers"

	write_env
	say "cluster up; tests read $K8S_ENV_FILE"
	echo "export KUBECONFIG=$K8S_KUBECONFIG"
}

main "$@"
