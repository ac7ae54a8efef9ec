#!/usr/bin/env bash
# bench/ratelimit.sh — rate-limit decisions per second, as ratios measured
# in one run: in memory, a ratelimit.Limiter on memstore against
# golang.org/x/time/rate (a map of *rate.Limiter under a mutex, the usual
# per-client pattern); then, when KEYHOLD_TEST_REDIS_URL is set, on Redis
# through bench/ratelimit-redis.sh (redisstore against
# go-redis/redis_rate/v10 and a plain GET).
#
# The memory benchmarks (ratelimit/bench_test.go: one key or 10,000 keys,
# serial or parallel) run ROUNDS times (default 10), alternating, so both
# sides of each ratio see the same load drift; the ratio is median keyhold
# ns/op / median x/time/rate ns/op (above 1: keyhold is slower). benchstat
# (when on PATH or in $(go env GOPATH)/bin) shows the same comparison with
# confidence intervals. About 2 minutes for memory, 4 for Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
go test -c -o "$tmp/ratelimit.test" ./ratelimit
for _ in $(seq "$ROUNDS"); do
	(cd ratelimit && "$tmp/ratelimit.test" -test.run='^$' -test.bench='^BenchmarkAllowMemory$' -test.benchmem -test.count=1) | grep '^Benchmark' |
		sed 's|^BenchmarkAllowMemory/|Benchmark/|' >>"$tmp/keyhold.txt"
	(cd ratelimit && "$tmp/ratelimit.test" -test.run='^$' -test.bench='^BenchmarkXTimeRate$' -test.benchmem -test.count=1) | grep '^Benchmark' |
		grep -v '/single' | sed 's|^BenchmarkXTimeRate/map/|Benchmark/|' >>"$tmp/x-time-rate.txt"
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo
echo "| in memory | keyhold on memstore ns/op | x/time/rate map ns/op | ratio |"
echo "| --- | --- | --- | --- |"
for name in $(awk '{print $1}' "$tmp/keyhold.txt" | sort -u); do
	k=$(awk -v n="$name" '$1==n {print $3}' "$tmp/keyhold.txt" | median)
	r=$(awk -v n="$name" '$1==n {print $3}' "$tmp/x-time-rate.txt" | median)
	printf '| %s | %.0f | %.0f | %.2f |\n' "${name#Benchmark/}" "$k" "$r" "$(echo "$k / $r" | bc -l)"
done

benchstat=$(command -v benchstat || true)
[ -n "$benchstat" ] || { [ -x "$(go env GOPATH)/bin/benchstat" ] && benchstat="$(go env GOPATH)/bin/benchstat"; } || true
if [ -n "$benchstat" ]; then
	echo
	(cd "$tmp" && "$benchstat" -col .file x-time-rate.txt keyhold.txt)
fi

if [ -n "${KEYHOLD_TEST_REDIS_URL:-${REDIS_URL:-}}" ]; then
	echo
	bash bench/ratelimit-redis.sh
else
	echo
	echo "# Redis: skipped (set KEYHOLD_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379/0)"
fi
