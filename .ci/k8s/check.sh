#!/usr/bin/env bash
# Smoke checks of a running test cluster (after up.sh): a Deployment rolls out, its ClusterIP
# answers, cluster DNS resolves, kubectl logs/exec/port-forward work, pods reach the API
# server, and a PersistentVolumeClaim binds and its volume returns to the pool after release.
# All traffic goes to 127.0.0.1 or to pod and service addresses of this cluster. Leaves nothing
# behind (its namespace is deleted). Exit status: the number of failed checks.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ns=msctl-ci-check
failed=0
pf=

check() {
	local what=$1 out
	shift
	if out="$("$@" 2>&1)"; then
		say "ok    $what"
	else
		say "FAIL  $what"
		sed 's/^/        /' <<<"$out" | tail -n 15
		failed=$((failed + 1))
	fi
}

# in_client CMD...: runs CMD in the client pod (busybox).
in_client() { kubectl -n "$ns" exec client -- "$@"; }

# pod_http HOST PORT: a plain HTTP/1.0 GET from the client pod; prints the response. With nc:
# the static busybox's wget crashes (SIGSEGV) in this image.
pod_http() { in_client sh -c "printf 'GET / HTTP/1.0\r\nHost: $1\r\n\r\n' | nc -w 3 $1 $2"; }

# pod_http_ok HOST PORT: the GET answers 200.
pod_http_ok() { pod_http "$@" | grep -q '^HTTP/1.[01] 200'; }

# api_via_relay: plain HTTP to the "kubernetes" Service's TLS port. Only the apiserver itself
# answers that with this message, so it proves the path Service -> relay -> apiserver.
api_via_relay() { pod_http kubernetes.default.svc 443 | grep -q 'HTTP request to an HTTPS server'; }

# eventually SECONDS CMD...: CMD succeeds within SECONDS (kube-proxy programs a new Service a
# moment after its endpoints become ready, a released volume is recycled within seconds).
eventually() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

cleanup() {
	[[ -n "$pf" ]] && kill "$pf" 2>/dev/null
	kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=90s >/dev/null
}
trap cleanup EXIT

[[ -f "$K8S_ENV_FILE" ]] || die "no cluster ($K8S_ENV_FILE missing): run up.sh"
kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=90s >/dev/null
kubectl create namespace "$ns" >/dev/null
wait_for 30 "ServiceAccount $ns/default" kubectl -n "$ns" get serviceaccount default

kubectl -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: $BUSYBOX_IMAGE
        imagePullPolicy: Never
        command: [sh, -c, 'mkdir -p /tmp/www && hostname >/tmp/www/index.html && echo "serving on 8080" && exec httpd -f -v -p 8080 -h /tmp/www']
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: $BUSYBOX_IMAGE, imagePullPolicy: Never, command: [sleep, "3600"]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML

check "Deployment web rolls out (2 replicas)" kubectl -n "$ns" rollout status deployment/web --timeout=90s
check "client pod Ready" kubectl -n "$ns" wait --for=condition=Ready pod/client --timeout=60s

cluster_ip="$(kubectl -n "$ns" get service web -o jsonpath='{.spec.clusterIP}')"
check "host -> ClusterIP $cluster_ip:80" eventually 10 curl -sf -m 3 "http://$cluster_ip/"
check "pod -> web.$ns.svc.$CLUSTER_DOMAIN (DNS + ClusterIP)" \
	eventually 10 pod_http_ok "web.$ns.svc.$CLUSTER_DOMAIN" 80
check "pod -> web (search path)" pod_http_ok web 80
check "pod resolves kubernetes.default.svc.$CLUSTER_DOMAIN" in_client nslookup "kubernetes.default.svc.$CLUSTER_DOMAIN"
check "host resolves via kube-dns $DNS_SVC_IP" /bin/busybox nslookup "web.$ns.svc.$CLUSTER_DOMAIN" "$DNS_SVC_IP"
check "names outside the cluster are not forwarded" sh -c "! kubectl -n $ns exec client -- nslookup example.com"
check "pod -> API server through the relay (kubernetes.default.svc:443)" api_via_relay

web_pod="$(kubectl -n "$ns" get pods -l app=web -o jsonpath='{.items[0].metadata.name}')"
check "kubectl logs $web_pod" sh -c "kubectl -n $ns logs $web_pod | grep -q 'serving on 8080'"
check "kubectl exec $web_pod" kubectl -n "$ns" exec "$web_pod" -- cat /tmp/www/index.html
kubectl -n "$ns" port-forward --address 127.0.0.1 service/web 28080:80 >/dev/null 2>&1 &
pf=$!
check "kubectl port-forward 127.0.0.1:28080 -> service/web" eventually 10 curl -sf -m 3 http://127.0.0.1:28080/

check "PVC binds to the default StorageClass $STORAGE_CLASS" \
	kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Bound pvc/data --timeout=30s
pv="$(kubectl -n "$ns" get pvc data -o jsonpath='{.spec.volumeName}')"
kubectl -n "$ns" delete pvc data --wait=true --timeout=30s >/dev/null
check "released volume ${pv:-?} returns to the pool" eventually 30 sh -c \
	"kubectl get pv '$pv' -o jsonpath='{.status.phase}' | grep -qx Available"

if ((failed)); then
	say "$failed check(s) failed"
else
	say "all checks passed"
fi
exit "$failed"
