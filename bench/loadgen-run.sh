#!/usr/bin/env bash
# bench/loadgen-run.sh MODE DURATION [EXTRA_ARGS]: the body shared by
# bench/load.sh and bench/storm.sh (read their headers for what each
# measures). Builds bench/cmd/loadgen into a temporary directory and runs it
# in MODE for DURATION, on SQLite, and on PostgreSQL + Redis too when
# KEYHOLD_TEST_POSTGRES_DSN and KEYHOLD_TEST_REDIS_URL are both set; its
# JSON Lines go to BENCH_OUT when set. Ctrl-C or SIGTERM stops loadgen,
# which stops its servers, drops its schema and deletes its keys.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=$1 duration=$2 extra=${3:-}
PG=${KEYHOLD_TEST_POSTGRES_DSN:-}
REDIS=${KEYHOLD_TEST_REDIS_URL:-}
tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true # loadgen stops its servers, drops its schema, deletes its keys
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# In the background and waited for, like loadgen below: bash runs the INT and
# TERM traps as soon as the signal arrives during a wait, and not at all
# during a foreground command that survives the signal (go build does).
go build -o "$tmp/loadgen" ./bench/cmd/loadgen &
pid=$!
wait "$pid"
pid=
args=(-mode "$mode" -duration "$duration" -storage sqlite)
if [ -n "$PG" ] && [ -n "$REDIS" ]; then
	args=(-mode "$mode" -duration "$duration" -storage sqlite,postgres+redis -postgres "$PG" -redis "$REDIS")
else
	echo "$mode: KEYHOLD_TEST_POSTGRES_DSN and KEYHOLD_TEST_REDIS_URL are not both set: SQLite only" >&2
fi
[ -n "${BENCH_OUT:-}" ] && args+=(-out "$BENCH_OUT")
# shellcheck disable=SC2206
args+=($extra)
"$tmp/loadgen" "${args[@]}" &
pid=$!
status=0
wait "$pid" || status=$?
pid=
exit "$status"
