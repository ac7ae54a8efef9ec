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
# (default 1). BENCH_QUICK=1: 1 round of 1 s per route (to test the
# pipeline). BENCH_OUT=FILE appends the results as JSON Lines (table
# "session", see bench/README.md). The servers listen on free loopback
# ports chosen when they start. About 2 minutes with the defaults, 3 with
# Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_QUICK:-}" = 1 ]; then
	ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1s}
fi
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

start() { # start NAME [ARGS...]: sets addr to the server's host:port
	local name=$1
	shift
	"$tmp/server" -addr 127.0.0.1:0 -cookies "$tmp/$name.cookies" "$@" 2>"$tmp/$name.log" &
	pids+=($!)
	for _ in $(seq 300); do
		if [ -s "$tmp/$name.cookies" ] && grep -q serving "$tmp/$name.log"; then
			addr=$(awk '/serving on/ { print $NF; exit }' "$tmp/$name.log")
			return 0
		fi
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

start mem
# shellcheck disable=SC1091
source "$tmp/mem.cookies"
mem=http://$addr
routes=(bare keyhold keyhold-unlocked keyhold-unlocked-open scs)
if [ -n "$REDIS" ]; then
	start redis -redis "$REDIS"
	redis=http://$addr
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

# ---- JSON lines for bench/run.sh --------------------------------------------
if [ -n "${BENCH_OUT:-}" ]; then
	label() {
		case $1 in
		bare) echo "bare handler (writes hello)" ;;
		keyhold) echo "keyhold Manager.Handler + RequireLogin, logged in (memstore)" ;;
		keyhold-unlocked) echo "keyhold Manager.Unlocked, unlocked session (memstore)" ;;
		keyhold-unlocked-open) echo "keyhold Manager.Unlocked + open a 64-byte record (memstore)" ;;
		scs) echo "alexedwards/scs/v2 LoadAndSave, logged in (its memstore)" ;;
		redis-keyhold) echo "keyhold, logged in (sessions in Redis)" ;;
		redis-keyhold-unlocked) echo "keyhold, unlocked (sessions in Redis)" ;;
		esac
	}
	how="wrk -t$THREADS -c$CONNECTIONS -d$DURATION over loopback, median of $ROUNDS alternating rounds"
	scs=$(median <"$tmp/scs.rps")
	for r in "${routes[@]}"; do
		case $r in bare | scs) continue ;; esac
		v=$(median <"$tmp/$r.rps")
		printf '{"kind":"ratio","table":"session","what":"%s vs the bare handler","ours_label":"%s","ours":%s,"reference_label":"%s","reference":%s,"unit":"req/s","lower_is_better":false,"note":"%s"}\n' \
			"$r" "$(label "$r")" "$v" "$(label bare)" "$bare" "$how" >>"$BENCH_OUT"
	done
	for r in keyhold redis-keyhold; do
		[ -f "$tmp/$r.rps" ] || continue
		v=$(median <"$tmp/$r.rps")
		printf '{"kind":"ratio","table":"session","what":"logged-in request: %s vs scs","ours_label":"%s","ours":%s,"reference_label":"%s","reference":%s,"unit":"req/s","lower_is_better":false,"note":"%s"}\n' \
			"$r" "$(label "$r")" "$v" "$(label scs)" "$scs" "$how" >>"$BENCH_OUT"
	done
	if [ -n "$REDIS" ]; then
		for r in redis-keyhold redis-keyhold-unlocked; do
			awk -v r="$r" '{t += $1 - $2; n += $3} END {printf "{\"kind\":\"fact\",\"table\":\"session\",\"what\":\"Redis round trips per request, %s\",\"value\":%.4f,\"unit\":\"round trips\",\"note\":\"counted by a go-redis hook over %d requests\"}\n", r, t / n, n}' "$tmp/$r.trips" >>"$BENCH_OUT"
		done
	fi
fi
