#!/usr/bin/env bash
# bench/vault.sh — vault.Unlocked Seal/Open against raw AES-256-GCM with
# random nonces (cipher.NewGCMWithRandomNonce), and the split of an Unlock
# between the KDF and everything else, as ratios measured in one run.
#
# The vault package's benchmarks run ROUNDS times (default 10), one round at
# a time, so both sides of each ratio see the same load drift; the ratio is
# median keyhold ns/op / median raw ns/op. benchstat (when on PATH or in
# $(go env GOPATH)/bin) shows the same comparison with confidence intervals.
# About 1 minute on 2 idle cores with the default ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
go test -c -o "$tmp/vault.test" ./vault
for _ in $(seq "$ROUNDS"); do
	(cd vault && "$tmp/vault.test" -test.run='^$' -test.bench='^Benchmark(Seal|Open)$' -test.benchmem -test.count=1) | grep '^Benchmark' >>"$tmp/all.txt"
done
(cd vault && "$tmp/vault.test" -test.run='^$' -test.bench='^BenchmarkUnlock/(kdf-only|unlock)$' -test.benchtime=5x -test.count=3) | grep '^Benchmark' >"$tmp/unlock.txt"
(cd vault && "$tmp/vault.test" -test.run='^$' -test.bench='^BenchmarkUnlock/without-kdf$' -test.count=3) | grep '^Benchmark' >>"$tmp/unlock.txt"

grep '/keyhold/' "$tmp/all.txt" | sed 's|/keyhold/|/|' >"$tmp/keyhold.txt"
grep '/raw-aes-gcm/' "$tmp/all.txt" | sed 's|/raw-aes-gcm/|/|' >"$tmp/raw-aes-gcm.txt"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
echo
echo "| benchmark | keyhold ns/op | raw AES-256-GCM ns/op | ratio |"
echo "| --- | --- | --- | --- |"
for name in $(awk '{print $1}' "$tmp/keyhold.txt" | sort -u); do
	k=$(awk -v n="$name" '$1==n {print $3}' "$tmp/keyhold.txt" | median)
	r=$(awk -v n="$name" '$1==n {print $3}' "$tmp/raw-aes-gcm.txt" | median)
	printf '| %s | %.0f | %.0f | %.2f |\n' "${name#Benchmark}" "$k" "$r" "$(echo "$k / $r" | bc -l)"
done
kdf=$(awk '$1 ~ /kdf-only/ {print $3}' "$tmp/unlock.txt" | median)
unlock=$(awk '$1 ~ /Unlock\/unlock/ {print $3}' "$tmp/unlock.txt" | median)
rest=$(awk '$1 ~ /without-kdf/ {print $3}' "$tmp/unlock.txt" | median)
echo
echo "| Unlock at the default slot parameters (Argon2id 64 MiB, t=3, p=4) | median |"
echo "| --- | --- |"
printf '| whole Unlock | %.1f ms |\n| KDF alone | %.1f ms |\n| everything but the KDF (read, decode, unwrap, key schedule) | %.1f µs = %.3f%% of the KDF |\n' \
	"$(echo "$unlock / 1000000" | bc -l)" "$(echo "$kdf / 1000000" | bc -l)" "$(echo "$rest / 1000" | bc -l)" "$(echo "100 * $rest / $kdf" | bc -l)"

benchstat=$(command -v benchstat || true)
[ -n "$benchstat" ] || { [ -x "$(go env GOPATH)/bin/benchstat" ] && benchstat="$(go env GOPATH)/bin/benchstat"; } || true
if [ -n "$benchstat" ]; then
	echo
	(cd "$tmp" && "$benchstat" -col .file raw-aes-gcm.txt keyhold.txt)
fi
