# shellcheck shell=bash
# Settings of the single-node test cluster, sourced (through lib.sh) by every script in .ci/k8s.
# Any value can be overridden from the environment. No name starts with ETCD_: etcd reads every
# ETCD_* environment variable as a flag.
#
# Everything listens on loopback or on the CNI bridge the cluster creates; nothing binds or
# dials the machine's external interface.

# --- versions -------------------------------------------------------------------------------
# Kubernetes stays pinned: this host runs cgroup v1, which kubelet accepts only behind
# failCgroupV1=false, an opt-out a later release removes.
: "${K8S_VERSION:=v1.37.2}"
: "${KV_STORE_VERSION:=v3.7.2}" # etcd server, built from go.etcd.io/etcd/server/v3
: "${COREDNS_VERSION:=v1.15.0}"

# --- where things live ----------------------------------------------------------------------
# Binaries are cached by version outside the clone, so a fresh CI clone reuses them.
: "${MSCTL_K8S_CACHE:=/var/cache/msctl/k8s/$K8S_VERSION}"
: "${K8S_BIN:=$MSCTL_K8S_CACHE/bin}"
# Everything a running cluster owns. The env file and kubeconfig are the interface to the tests
# (internal/testenv reads $K8S_HOME/env); down.sh removes both.
: "${K8S_HOME:=/var/tmp/msctl-k8s}"
: "${K8S_STATE:=$K8S_HOME/state}"
: "${K8S_ENV_FILE:=$K8S_HOME/env}"
: "${K8S_KUBECONFIG:=$K8S_HOME/kubeconfig}"
: "${K8S_CONTEXT:=msctl-test}"
: "${K8S_PV_DIR:=$K8S_HOME/pv}"
: "${K8S_SOCK:=$K8S_STATE/containerd/containerd.sock}"
: "${CNI_BIN_DIR:=/usr/lib/cni}" # Debian containernetworking-plugins

# --- addresses (loopback only) --------------------------------------------------------------
# kubelet refuses a loopback --node-ip but takes an IP given as --hostname-override as the
# node's address, so the node is named after its address: InternalIP = Hostname = 127.0.0.1.
: "${NODE_NAME:=127.0.0.1}"
: "${API_PORT:=16443}"
: "${KV_PORT:=23791}" # etcd client port
: "${KV_PEER_PORT:=23801}"
: "${KUBELET_PORT:=10250}"
: "${KUBELET_HEALTHZ_PORT:=10248}"
: "${KCM_PORT:=10257}"
: "${SCHED_PORT:=10259}"
: "${PROXY_HEALTHZ_PORT:=10256}"
: "${PROXY_METRICS_PORT:=10249}"
: "${COREDNS_HEALTH_PORT:=18080}"
: "${COREDNS_READY_PORT:=18181}"

# --- cluster networks -----------------------------------------------------------------------
: "${SERVICE_CIDR:=10.96.0.0/16}"
: "${KUBE_SVC_IP:=10.96.0.1}" # first address of SERVICE_CIDR: the "kubernetes" Service
: "${DNS_SVC_IP:=10.96.0.10}"
: "${CLUSTER_CIDR:=10.244.0.0/16}"
: "${POD_CIDR:=10.244.0.0/24}"
: "${BRIDGE:=msctlk8s0}"
: "${BRIDGE_IP:=10.244.0.1}" # pods' gateway; CoreDNS and the API relay listen here
: "${CNI_NET:=msctlk8s}"
: "${CLUSTER_DOMAIN:=cluster.local}"
: "${API_RELAY_PORT:=6443}" # BRIDGE_IP:API_RELAY_PORT -> 127.0.0.1:API_PORT, for pods

# --- images (nothing is ever pulled: all are imported into the node's containerd) -----------
: "${PAUSE_IMAGE:=msctl.local/pause:ci}" # containerd's sandbox_image
: "${COREDNS_IMAGE:=msctl.local/coredns:$COREDNS_VERSION}"
# busybox (sh, httpd, wget, nslookup): the smoke checks' workload, and a client pod for tests.
: "${BUSYBOX_IMAGE:=msctl.local/busybox:ci}"

# --- storage ----------------------------------------------------------------------------------
: "${PV_COUNT:=20}"
: "${PV_SIZE:=10Gi}"
: "${STORAGE_CLASS:=standard}"
