#!/usr/bin/env bash
# bench/ratelimit-redis.sh — one rate-limit decision in Redis, through
# redisstore's TakeRate and through go-redis/redis_rate/v10, against a
# plain GET of an existing key, as ratios measured in one run.
#
# The three benchmarks of storage/redisstore/bench_test.go (BenchmarkRedisGET,
# BenchmarkTakeRate, BenchmarkRedisRate; sub-benchmarks serial and
# parallel, one key and many keys, every decision allowed) run ROUNDS times
# (default 10) with -cpu=$CPU (default 1), one benchmark at a time, in an
# order that rotates from round to round, so that a drifting load hits all
# three alike. The ratios are of medians: ours/GET, redis_rate/GET and
# ours/redis_rate (below 1: ours is faster). benchstat (when on PATH or in
# $(go env GOPATH)/bin) shows the same comparison with confidence
# intervals. With redis-cli on PATH, the script also reports the server's
# time per command (INFO commandstats, usec_per_call) for GET and for each
# script's EVALSHA, over one extra serial run each: the script's EVALSHA
# time includes the GET and SET it runs.
#
# Needs KEYHOLD_TEST_REDIS_URL (or REDIS_URL), e.g.
# redis://127.0.0.1:6379/0. Environment: ROUNDS, CPU, BENCHTIME (per
# sub-benchmark, default 1s). About 4 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
CPU=${CPU:-1}
BENCHTIME=${BENCHTIME:-1s}
export KEYHOLD_TEST_REDIS_URL=${KEYHOLD_TEST_REDIS_URL:-${REDIS_URL:-}}
[ -n "$KEYHOLD_TEST_REDIS_URL" ] || { echo "ratelimit-redis.sh: set KEYHOLD_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if command -v redis-cli >/dev/null; then
	echo "# Redis $(redis-cli -u "$KEYHOLD_TEST_REDIS_URL" INFO server | tr -d '\r' | awk -F: '$1=="redis_version" {print $2}'), $ROUNDS rounds, -cpu=$CPU, -benchtime=$BENCHTIME"
fi
go test -c -o "$tmp/redisstore.test" ./storage/redisstore

# run NAME [BENCH-REGEXP-SUFFIX] prints the benchmark lines of BenchmarkNAME.
run() {
	(cd storage/redisstore && "$tmp/redisstore.test" -test.run='^$' -test.bench="^Benchmark$1\$${2:-}" \
		-test.cpu="$CPU" -test.benchtime="$BENCHTIME" -test.count=1) | grep '^Benchmark'
}

impls=(RedisGET TakeRate RedisRate)
for round in $(seq "$ROUNDS"); do
	for i in 0 1 2; do
		name=${impls[$(((round + i) % 3))]}
		run "$name" | sed "s|^Benchmark$name/|Benchmark/|" >>"$tmp/$name.txt"
	done
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
med() { awk -v n="$2" '$1==n {print $3}' "$tmp/$1.txt" | median; }
echo
echo "| benchmark | GET ns/op | TakeRate ns/op | redis_rate ns/op | TakeRate/GET | redis_rate/GET | TakeRate/redis_rate |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for name in $(awk '{print $1}' "$tmp/RedisGET.txt" | sort -u); do
	g=$(med RedisGET "$name")
	o=$(med TakeRate "$name")
	r=$(med RedisRate "$name")
	printf '| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |\n' "${name#Benchmark/}" "$g" "$o" "$r" \
		"$(echo "$o / $g" | bc -l)" "$(echo "$r / $g" | bc -l)" "$(echo "$o / $r" | bc -l)"
done

if command -v redis-cli >/dev/null; then
	# stat CMD prints calls and usec of CMD in INFO commandstats.
	stat() {
		redis-cli -u "$KEYHOLD_TEST_REDIS_URL" INFO commandstats | tr -d '\r' |
			awk -F'[:,=]' -v c="cmdstat_$1" '$1==c {print $3, $5}'
	}
	echo
	echo "| server time per call (INFO commandstats, one serial/one-key run each) | calls | usec_per_call |"
	echo "| --- | --- | --- |"
	for pair in RedisGET:get TakeRate:evalsha RedisRate:evalsha; do
		name=${pair%:*} cmd=${pair#*:}
		read -r c0 u0 <<<"$(stat "$cmd" || true)"
		run "$name" '/serial/one-key$' >/dev/null
		read -r c1 u1 <<<"$(stat "$cmd")"
		printf '| %s (%s) | %d | %.2f |\n' "$name" "$cmd" "$((c1 - ${c0:-0}))" "$(echo "($u1 - ${u0:-0}) / ($c1 - ${c0:-0})" | bc -l)"
	done
	echo "(other clients of the same server, if any, are counted too)"
fi

benchstat=$(command -v benchstat || true)
[ -n "$benchstat" ] || { [ -x "$(go env GOPATH)/bin/benchstat" ] && benchstat="$(go env GOPATH)/bin/benchstat"; } || true
if [ -n "$benchstat" ]; then
	echo
	(cd "$tmp" && "$benchstat" -col .file RedisGET.txt TakeRate.txt RedisRate.txt)
fi
