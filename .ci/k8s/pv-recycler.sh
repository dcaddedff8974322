#!/usr/bin/env bash
# Returns released PersistentVolumes of the test cluster's pool to service. Started by up.sh
# as a cluster component (and stopped by down.sh); not meant to be run by hand.
#
# The pool is static: up.sh pre-creates PV_COUNT hostPath volumes of the default StorageClass.
# When a claim is deleted (msctl down --volumes, a test's cleanup), its volume turns Released
# and Kubernetes never reuses it by itself (the Recycle policy is gone). Every few seconds this
# wipes such a volume's directory and drops its claimRef, which makes it Available again.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

released='{range .items[?(@.status.phase=="Released")]}{.metadata.name} {.spec.hostPath.path}{"\n"}{end}'
while sleep 2; do
	kubectl get pv -l msctl-ci/pool=hostpath -o jsonpath="$released" 2>/dev/null |
		while read -r name dir; do
			# Only our own pool directories are ever wiped.
			[[ -n "$dir" && "$dir" == "$K8S_PV_DIR"/* ]] || continue
			find "$dir" -mindepth 1 -delete
			# A pod may have chowned or chmodded the directory (Postgres does): reset it so
			# the next workload, whatever its user, can write.
			chown 0:0 "$dir" && chmod 0777 "$dir"
			kubectl patch pv "$name" --type=json -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null &&
				echo "$(date -u +%T) recycled $name"
		done
done
