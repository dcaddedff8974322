#!/usr/bin/env bash
# Entrypoint of the bitnami/etcd stand-in. etcd reads ETCD_* variables natively; this only
# enforces bitnami's rule that running without authentication must be asked for explicitly.
set -euo pipefail

if [[ -n "${ETCD_ROOT_PASSWORD:-}" ]]; then
	echo "error: ETCD_ROOT_PASSWORD is not supported by the msctl stand-in; use ALLOW_NONE_AUTHENTICATION=yes" >&2
	exit 1
fi
if [[ "${ALLOW_NONE_AUTHENTICATION:-no}" != yes ]]; then
	echo "error: the ETCD_ROOT_PASSWORD environment variable is empty or not set." \
		"Set the environment variable ALLOW_NONE_AUTHENTICATION=yes to allow the container to be started with blank passwords." >&2
	exit 1
fi
exec "$@"
