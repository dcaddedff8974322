#!/usr/bin/env bash
# Entrypoint of the postgres:15 stand-in. Mirrors the official image's behaviour: on the first
# start it initialises PGDATA, sets the superuser password, creates POSTGRES_DB, runs
# /docker-entrypoint-initdb.d once against a socket-only server, then execs postgres in the
# foreground as the postgres user. Later starts with an existing PGDATA go straight to postgres.
set -Eeuo pipefail

# file_env VAR [default]: VAR or VAR_FILE (a path whose content is the value), not both.
file_env() {
	local var="$1" file_var="${1}_FILE" def="${2:-}"
	if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
		echo "error: both $var and $file_var are set (but are exclusive)" >&2
		exit 1
	fi
	local val="$def"
	if [[ -n "${!var:-}" ]]; then
		val="${!var}"
	elif [[ -n "${!file_var:-}" ]]; then
		val="$(<"${!file_var}")"
	fi
	export "$var"="$val"
	unset "$file_var"
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	DATABASE_ALREADY_EXISTS=
	if [[ -s "$PGDATA/PG_VERSION" ]]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

verify_minimum_env() {
	if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
		cat >&2 <<-'MSG'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		MSG
		exit 1
	fi
}

init_database_dir() {
	local -a args=(--username="$POSTGRES_USER")
	local pwfile=
	if [[ -n "$POSTGRES_PASSWORD" ]]; then
		# A private file rather than <(...): /dev/fd is not always there for initdb to open.
		pwfile="$(mktemp)"
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
		args+=(--pwfile="$pwfile")
	fi
	# POSTGRES_INITDB_ARGS is a word list by contract, hence unquoted.
	# shellcheck disable=SC2086
	initdb "${args[@]}" $POSTGRES_INITDB_ARGS
	[[ -z "$pwfile" ]] || rm -f "$pwfile"
	sed -ri "s/^#?\s*listen_addresses\s*=\s*\S+.*/listen_addresses = '*'/" "$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

# The temporary server listens on the unix socket only, so clients never see a half-initialised
# database on the TCP port.
temp_server_start() {
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
}

temp_server_stop() {
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_init() {
	PGHOST=/var/run/postgresql PGPORT=5432 PGPASSWORD= \
		psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_db() {
	if [[ "$POSTGRES_DB" == postgres ]]; then
		return
	fi
	local exists
	exists="$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only --no-align <<-'SQL'
		SELECT 1 FROM pg_database WHERE datname = :'db';
	SQL
	)"
	if [[ -z "$exists" ]]; then
		psql_init --dbname postgres --set db="$POSTGRES_DB" <<-'SQL'
			CREATE DATABASE :"db";
		SQL
	fi
}

process_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)
			if [[ -x "$f" ]]; then
				echo "$0: running $f"
				"$f"
			else
				echo "$0: sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql) echo "$0: running $f"; psql_init --dbname "$POSTGRES_DB" -f "$f" ;;
		*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB" ;;
		*.sql.xz) echo "$0: running $f"; xzcat "$f" | psql_init --dbname "$POSTGRES_DB" ;;
		*) if [[ -e "$f" ]]; then echo "$0: ignoring $f"; fi ;;
		esac
	done
}

main() {
	# Flags alone ("-c fsync=off") are arguments to postgres, as in the official image.
	if [[ "${1:-}" == -* ]]; then
		set -- postgres "$@"
	fi
	if [[ "${1:-}" != postgres ]]; then
		exec "$@"
	fi

	setup_env
	if [[ "$(id -u)" == 0 ]]; then
		mkdir -p "$PGDATA"
		chmod 0700 "$PGDATA"
		chown -R postgres:postgres "$PGDATA"
		mkdir -p /var/run/postgresql
		chown postgres:postgres /var/run/postgresql
		chmod 3777 /var/run/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi

	if [[ -z "$DATABASE_ALREADY_EXISTS" ]]; then
		verify_minimum_env
		init_database_dir
		temp_server_start
		setup_db
		process_init_files
		temp_server_stop
		echo
		echo 'PostgreSQL init process complete; ready for start up.'
		echo
	else
		echo
		echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
		echo
	fi
	exec "$@"
}

main "$@"
