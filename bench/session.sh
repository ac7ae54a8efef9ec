#!/usr/bin/env bash
# bench/session.sh — requests per second through keyhold's session
# middleware against the bare handler and against scs, measured with wrk
# over loopback in one run, as ratios to the bare handler (above 1 is
# faster than bare, below 1 slower).
#
# Routes (bench/cmd/sessionserver): /bare, /keyhold (a logged-in session,
# RequireLogin), /keyhold-unlocked (Manager.Unlocked opens the vault keys
# sealed in the session on every request), /keyhold-unlocked-open (and opens
# a 64-byte record with it), /scs (scs/v2 LoadAndSave with
# its memstore, a logged-in session). Rounds alternate over the routes so a
# drifting load hits all alike; the figure per route is the median over
# rounds. With Redis (KEYHOLD_TEST_REDIS_URL, or REDIS_URL), a second
# server keeps keyhold's sessions in Redis, and the script reports Redis
# round trips per request, counted by a go-redis hook.
#
# Needs go and wrk (apt-get install wrk). Environment: ROUNDS (default 5),
# DURATION per wrk run (default 5s), CONNECTIONS (default 32), THREADS
# (default 1). About 2 minutes with the defaults, 3 with Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
REDIS=${REDIS_URL:-${KEYHOLD_TEST_REDIS_URL:-}}
command -v wrk >/dev/null || { echo "session.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
# The servers are stopped with SIGTERM and waited for: the one on Redis
# deletes its run's keys as it exits, leaving the Redis as it found it.
trap 'kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"
go build -o "$tmp/server" ./bench/cmd/sessionserver

start() { # start NAME ADDR [ARGS...]
	local name=$1 addr=$2
	shift 2
	"$tmp/server" -addr "$addr" -cookies "$tmp/$name.cookies" "$@" 2>"$tmp/$name.log" &
	pids+=($!)
	for _ in $(seq 100); do
		[ -s "$tmp/$name.cookies" ] && grep -q serving "$tmp/$name.log" && return 0
		sleep 0.1
	done
	cat "$tmp/$name.log" >&2
	exit 1
}
rps() { # rps URL [COOKIE] -> requests/s, after checking one request succeeds
	local url=$1 cookie=${2:-}
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' ${cookie:+-H "Cookie: $cookie"} "$url")
	[ "$code" = 200 ] || { echo "session.sh: $url answered $code" >&2; exit 1; }
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" ${cookie:+-H "Cookie: $cookie"} "$url" | awk '/^Requests\/sec/ {print $2}'
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

start mem 127.0.0.1:8089
# shellcheck disable=SC1091
source "$tmp/mem.cookies"
mem=http://127.0.0.1:8089
routes=(bare keyhold keyhold-unlocked keyhold-unlocked-open scs)
if [ -n "$REDIS" ]; then
	start redis 127.0.0.1:8090 -redis "$REDIS"
	redis=http://127.0.0.1:8090
	routes+=(redis-keyhold redis-keyhold-unlocked)
fi
for round in $(seq "$ROUNDS"); do
	for r in "${routes[@]}"; do
		case $r in
		bare) v=$(rps $mem/bare) ;;
		keyhold) v=$(rps $mem/keyhold "$KEYHOLD_COOKIE") ;;
		keyhold-unlocked) v=$(rps $mem/keyhold-unlocked "$KEYHOLD_UNLOCKED_COOKIE") ;;
		keyhold-unlocked-open) v=$(rps $mem/keyhold-unlocked-open "$KEYHOLD_UNLOCKED_COOKIE") ;;
		scs) v=$(rps $mem/scs "$SCS_COOKIE") ;;
		redis-keyhold | redis-keyhold-unlocked)
			(
				# shellcheck disable=SC1091
				source "$tmp/redis.cookies"
				c=$KEYHOLD_COOKIE
				[ $r = redis-keyhold-unlocked ] && c=$KEYHOLD_UNLOCKED_COOKIE
				before=$(curl -s $redis/roundtrips)
				out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: $c" "$redis/${r#redis-}")
				after=$(curl -s $redis/roundtrips)
				n=$(echo "$out" | awk '/requests in/ {print $1}')
				echo "$after $before $n" >>"$tmp/$r.trips"
				echo "$out" | awk '/^Requests\/sec/ {print $2}'
			) >"$tmp/v" && v=$(cat "$tmp/v")
			;;
		esac
		echo "$v" >>"$tmp/$r.rps"
	done
	echo "# round $round done" >&2
done

bare=$(median <"$tmp/bare.rps")
echo
echo "| route | requests/s (median of $ROUNDS) | ratio to bare |"
echo "| --- | --- | --- |"
for r in "${routes[@]}"; do
	v=$(median <"$tmp/$r.rps")
	printf '| %s | %.0f | %.2f |\n' "$r" "$v" "$(echo "$v / $bare" | bc -l)"
done
if [ -n "$REDIS" ]; then
	echo
	for r in redis-keyhold redis-keyhold-unlocked; do
		awk -v r="$r" '{t += $1 - $2; n += $3} END {printf "%s: %.3f Redis round trips per request (%d requests)\n", r, t / n, n}' "$tmp/$r.trips"
	done
fi
