#!/usr/bin/env bash
# bench/kdf.sh — keyhold's Argon2id and PBKDF2 against the reference C
# implementations, in one run, as ratios (our time / reference time: below 1
# is faster, above 1 slower).
#
#   one-shot   a whole process that hashes once, ours (bench/cmd/kdfone) and
#              the reference CLI (argon2 -r, openssl kdf), started in turn by
#              bench/cmd/interleave (A B, B A, …) so both see the same load;
#              median wall time (start to reap) and median CPU (user+sys).
#   warm       in one process, repeated: go test -bench (the kdf package's
#              benchmarks) and bench/ref/refloop.c, which calls the same C
#              libraries as the CLIs (libargon2.so.1, libcrypto.so.3) in a
#              loop; rounds alternate between the two, medians of rounds.
#
# Nothing is subtracted: process start-up is shown on its own rows.
# Tools: go, argon2 (apt-get install argon2), openssl (apt-get install openssl);
# for the warm reference rows also gcc and the runtime libraries libargon2-1
# and libssl3 (apt-get install gcc libargon2-1 libssl3); benchstat is used
# when on PATH or in $(go env GOPATH)/bin
# (go install golang.org/x/perf/cmd/benchstat@latest).
# Environment: ROUNDS (warm rounds, default 3), RUNS_ARGON2 (one-shot runs at
# 64 MiB, default 15), RUNS_INTERACTIVE (at 19 MiB, default 41), RUNS_PBKDF2
# (default 9); BENCH_QUICK=1 makes them all tiny (to test the pipeline);
# BENCH_OUT=FILE appends the results as JSON Lines (table "kdf", see
# bench/README.md) for bench/run.sh. About 1.5 minutes on 2 idle cores, 3 on
# a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${BENCH_QUICK:-}" = 1 ]; then
	ROUNDS=${ROUNDS:-1} RUNS_ARGON2=${RUNS_ARGON2:-3} RUNS_INTERACTIVE=${RUNS_INTERACTIVE:-3} RUNS_PBKDF2=${RUNS_PBKDF2:-3}
fi
ROUNDS=${ROUNDS:-3}
GO_BENCHTIME=3x GO_COUNT=2
[ "${BENCH_QUICK:-}" = 1 ] && GO_BENCHTIME=1x GO_COUNT=1
RUNS_ARGON2=${RUNS_ARGON2:-15}
RUNS_INTERACTIVE=${RUNS_INTERACTIVE:-41}
RUNS_PBKDF2=${RUNS_PBKDF2:-9}
PW=password
SALT=saltsaltsaltsalt # 16 bytes, as the library's salts

missing=0
for tool in go argon2 openssl; do
	if ! command -v "$tool" >/dev/null; then
		echo "kdf.sh: $tool not found (apt-get install $([ "$tool" = go ] && echo golang-go || echo "$tool"))" >&2
		missing=1
	fi
done
[ "$missing" = 0 ] || exit 1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version | cut -d' ' -f3) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "# $(openssl version | cut -d' ' -f1-2), argon2 CLI $(dpkg-query -W -f='${Version}' argon2 2>/dev/null || echo '?'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# building…"
go build -o "$tmp/kdfone" ./bench/cmd/kdfone
go build -o "$tmp/interleave" ./bench/cmd/interleave
go test -c -o "$tmp/kdf.test" ./kdf
warmref=""
if command -v gcc >/dev/null && gcc -O2 -o "$tmp/refloop" bench/ref/refloop.c -l:libargon2.so.1 -l:libcrypto.so.3 2>"$tmp/gcc.err"; then
	warmref=1
else
	echo "# warm reference rows skipped: could not build bench/ref/refloop.c (apt-get install gcc libargon2-1 libssl3): $(head -c 200 "$tmp/gcc.err" 2>/dev/null)"
fi
benchstat=$(command -v benchstat || true)
[ -n "$benchstat" ] || { [ -x "$(go env GOPATH)/bin/benchstat" ] && benchstat="$(go env GOPATH)/bin/benchstat"; } || true

ours_argon() { echo "$tmp/kdfone -alg argon2id -m $1 -t $2 -p 1 $3"; }
ref_argon() { echo "argon2 $SALT -id -t $2 -k $1 -p 1 -r"; }
ours_pbkdf2() { echo "$tmp/kdfone -alg pbkdf2-sha256 -i $1 $2"; }
ref_pbkdf2() { echo "openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt pass:$PW -kdfopt salt:$SALT -kdfopt iter:$1 PBKDF2"; }

# The same bytes out of both sides first: the comparison is of equal work.
a=$(echo -n $PW | $(ours_argon 65536 2 "-impl raw -salt $SALT"))
b=$(echo -n $PW | $(ref_argon 65536 2))
c=$(echo -n $PW | $(ours_pbkdf2 600000 "-impl raw -salt $SALT"))
d=$($(ref_pbkdf2 600000) | tr -d ':\n' | tr 'A-F' 'a-f')
if [ "$a" != "$b" ] || [ "$c" != "$d" ]; then
	echo "kdf.sh: outputs differ: argon2id $a vs $b, pbkdf2 $c vs $d" >&2
	exit 1
fi
echo "# outputs checked equal: Argon2id m=65536,t=2,p=1 $a; PBKDF2-SHA256 i=600000 $c"

# ---- one-shot -------------------------------------------------------------
oneshot() { # file runs label cmd label cmd …
	local out=$1 runs=$2
	shift 2
	"$tmp/interleave" -n "$runs" -warmup 1 -stdin "$PW" "$@" >"$out"
}
echo "# one-shot runs…"
oneshot "$tmp/os_a64" "$RUNS_ARGON2" hasher "$(ours_argon 65536 2 '')" raw "$(ours_argon 65536 2 "-impl raw -salt $SALT")" ref "$(ref_argon 65536 2)"
oneshot "$tmp/os_a19" "$RUNS_INTERACTIVE" hasher "$(ours_argon 19456 2 '')" raw "$(ours_argon 19456 2 "-impl raw -salt $SALT")" ref "$(ref_argon 19456 2)"
oneshot "$tmp/os_p" "$RUNS_PBKDF2" hasher "$(ours_pbkdf2 600000 '')" raw "$(ours_pbkdf2 600000 "-impl raw -salt $SALT")" ref "$(ref_pbkdf2 600000)"
oneshot "$tmp/os_start" "$RUNS_ARGON2" ours_a "$(ours_argon 8 1 "-impl raw -salt $SALT")" ref_a "$(ref_argon 8 1)" ours_p "$(ours_pbkdf2 1 "-impl raw -salt $SALT")" ref_p "$(ref_pbkdf2 1)"

field() { awk -F'\t' -v l="$2" -v f="$3" '$1 == l { print $f }' "$1"; } # file label column

# ---- warm -------------------------------------------------------------------
echo "# warm rounds ($ROUNDS)…"
: >"$tmp/go.txt"
: >"$tmp/ref.txt"
pattern='^Benchmark(Argon2id|Verify|PBKDF2SHA256)$/(m=|argon2id|pbkdf2-sha256|i=)'
for r in $(seq "$ROUNDS"); do
	# Alternate which side goes first.
	if [ $((r % 2)) = 1 ]; then order="go ref"; else order="ref go"; fi
	for side in $order; do
		if [ "$side" = go ]; then
			(cd kdf && "$tmp/kdf.test" -test.run='^$' -test.bench="$pattern" -test.benchtime="$GO_BENCHTIME" -test.count="$GO_COUNT") >>"$tmp/go.txt"
		elif [ -n "$warmref" ]; then
			{
				echo "a64 $("$tmp/refloop" argon2id 2 65536 1 4)"
				echo "a19 $("$tmp/refloop" argon2id 2 19456 1 7)"
				echo "p $("$tmp/refloop" pbkdf2-sha256 600000 2)"
			} >>"$tmp/ref.txt"
		fi
	done
done

# Page faults of warm calls: 8 hashes in one process, each side.
go_faults="" ref_faults=""
if [ -n "$warmref" ]; then
	"$tmp/interleave" -n "$([ "${BENCH_QUICK:-}" = 1 ] && echo 1 || echo 3)" -warmup 0 -stdin "$PW" \
		go "$tmp/kdfone -alg argon2id -m 65536 -t 2 -p 1 -impl raw -salt $SALT -n 8" ref "$tmp/refloop argon2id 2 65536 1 8" >"$tmp/faults8"
	go_faults=$(awk -F'\t' '$1 == "go" { printf "%.0f", $6 / 8 }' "$tmp/faults8")
	ref_faults=$(awk -F'\t' '$1 == "ref" { printf "%.0f", $6 / 8 }' "$tmp/faults8")
	echo "# minor page faults per call over 8 calls at 64 MiB in one process: x/crypto $go_faults, libargon2 (refloop) $ref_faults"
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
gobench() { # name → median seconds per op over rounds (GO_COUNT samples a round)
	awk -v n="$1" '{ name = $1; sub(/-[0-9]+$/, "", name) } name == n { for (i = 2; i < NF; i++) if ($(i + 1) == "ns/op") print $i / 1e9 }' "$tmp/go.txt" | median
}
refbench() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/ref.txt" | median; }

# ---- table ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { n = "^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$"; if (a ~ n && b ~ n && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
num() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$/) printf "%.4f", a; else print "n/a" }'; }
row() { # what ours ref [min_ours min_ref cpu_ours cpu_ref]
	local min="" cpu=""
	if [ $# -ge 7 ]; then
		min=$(ratio "$4" "$5")
		cpu=$(ratio "$6" "$7")
	fi
	printf '%-58s %8s %8s %6s %6s %6s\n' "$1" "$(num "$2")" "$(num "$3")" "$(ratio "$2" "$3")" "$min" "$cpu"
}
os_row() { # what file ours_label ref_label
	row "$1" "$(field "$2" "$3" 2)" "$(field "$2" "$4" 2)" "$(field "$2" "$3" 3)" "$(field "$2" "$4" 3)" "$(field "$2" "$3" 4)" "$(field "$2" "$4" 4)"
}

echo
echo "seconds (median); ratio = ours / reference, of medians; min = ratio of the fastest runs; cpu = of median user+sys time"
printf '%-58s %8s %8s %6s %6s %6s\n' "what" ours ref ratio min cpu
echo "one-shot process, $RUNS_ARGON2 (64 MiB) / $RUNS_INTERACTIVE (19 MiB) / $RUNS_PBKDF2 (PBKDF2) runs each, vs argon2 CLI / openssl kdf:"
os_row "  Argon2id m=65536,t=2,p=1  kdf.Hasher.Hash" "$tmp/os_a64" hasher ref
os_row "  Argon2id m=65536,t=2,p=1  x/crypto argon2.IDKey" "$tmp/os_a64" raw ref
os_row "  Argon2id m=19456,t=2,p=1  kdf.Hasher.Hash (interactive)" "$tmp/os_a19" hasher ref
os_row "  Argon2id m=19456,t=2,p=1  x/crypto argon2.IDKey" "$tmp/os_a19" raw ref
os_row "  PBKDF2-SHA256 i=600000    kdf.Hasher.Hash" "$tmp/os_p" hasher ref
os_row "  PBKDF2-SHA256 i=600000    crypto/pbkdf2" "$tmp/os_p" raw ref
os_row "  process start: Argon2id m=8,t=1 (not subtracted above)" "$tmp/os_start" ours_a ref_a
os_row "  process start: PBKDF2 i=1 (not subtracted above)" "$tmp/os_start" ours_p ref_p
echo "warm, in process, median of $ROUNDS rounds, vs refloop (libargon2 / libcrypto in a loop, same rounds):"
w_a64=$(refbench a64 2>/dev/null || true)
w_a19=$(refbench a19 2>/dev/null || true)
w_p=$(refbench p 2>/dev/null || true)
row "  Argon2id m=65536,t=2,p=1  kdf.Hasher.Verify" "$(gobench BenchmarkVerify/argon2id/m=65536,t=2,p=1)" "$w_a64"
row "  Argon2id m=65536,t=2,p=1  x/crypto argon2.IDKey" "$(gobench BenchmarkArgon2id/m=65536,t=2,p=1)" "$w_a64"
row "  Argon2id m=19456,t=2,p=1  kdf.Hasher.Verify" "$(gobench BenchmarkVerify/argon2id/m=19456,t=2,p=1)" "$w_a19"
row "  Argon2id m=19456,t=2,p=1  x/crypto argon2.IDKey" "$(gobench BenchmarkArgon2id/m=19456,t=2,p=1)" "$w_a19"
row "  PBKDF2-SHA256 i=600000    kdf.Hasher.Verify" "$(gobench BenchmarkVerify/pbkdf2-sha256/i=600000)" "$w_p"
row "  PBKDF2-SHA256 i=600000    crypto/pbkdf2" "$(gobench BenchmarkPBKDF2SHA256/i=600000)" "$w_p"
echo
echo "minor page faults of one process (median): Argon2id m=65536 x/crypto $(field "$tmp/os_a64" raw 6), Hasher $(field "$tmp/os_a64" hasher 6), argon2 CLI $(field "$tmp/os_a64" ref 6)"
echo "peak RSS of one process (KiB): Argon2id m=65536 ours $(field "$tmp/os_a64" hasher 5) (raw $(field "$tmp/os_a64" raw 5)), argon2 CLI $(field "$tmp/os_a64" ref 5); m=19456 ours $(field "$tmp/os_a19" hasher 5), CLI $(field "$tmp/os_a19" ref 5)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (a busy machine spreads the numbers; rerun when idle)"
if [ -n "$benchstat" ]; then
	echo
	echo "benchstat of the warm Go rounds (2 samples a round):"
	"$benchstat" "$tmp/go.txt" | awk 'NF == 0 { done = 1 } !done { print "  " $0 }'
fi

# ---- JSON lines for bench/run.sh --------------------------------------------
if [ -n "${BENCH_OUT:-}" ]; then
	isnum() { [[ $1 =~ ^[0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?$ ]]; }
	# jratio what ours_label ours ref_label ref unit [note]
	jratio() {
		if isnum "$3" && isnum "$5"; then
			printf '{"kind":"ratio","table":"kdf","what":"%s","ours_label":"%s","ours":%s,"reference_label":"%s","reference":%s,"unit":"%s","lower_is_better":true,"note":"%s"}\n' \
				"$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >>"$BENCH_OUT"
		else
			echo "kdf.sh: no figure for \"$1\" ($3 vs $5)" >&2
			jfailed=1
		fi
	}
	jfailed=0
	A64="Argon2id m=64 MiB, t=2, p=1"
	A19="Argon2id m=19 MiB, t=2, p=1 (interactive)"
	P6="PBKDF2-SHA256, 600,000 iterations"
	one="one process per hash, median wall time of $RUNS_ARGON2"
	for spec in "a64|$A64|$RUNS_ARGON2" "a19|$A19|$RUNS_INTERACTIVE" "p|$P6|$RUNS_PBKDF2"; do
		IFS='|' read -r key what runs <<<"$spec"
		f=$tmp/os_$key
		[ "$key" = p ] && ref="openssl kdf (OpenSSL CLI)" || ref="argon2 CLI (-r)"
		jratio "$what, one-shot" "kdfone: kdf.Hasher.Hash" "$(field "$f" hasher 2)" "$ref" "$(field "$f" ref 2)" s "one process per hash, median wall time of $runs interleaved runs"
		jratio "$what, one-shot, bare primitive" "kdfone -impl raw: $([ "$key" = p ] && echo crypto/pbkdf2 || echo x/crypto argon2.IDKey)" "$(field "$f" raw 2)" "$ref" "$(field "$f" ref 2)" s "one process per hash, median wall time of $runs interleaved runs"
		jratio "$what, one-shot, CPU time" "kdfone: kdf.Hasher.Hash" "$(field "$f" hasher 4)" "$ref" "$(field "$f" ref 4)" s "user+system time, median of $runs runs"
	done
	jratio "process start and exit (Argon2id m=8 KiB, t=1)" "kdfone -impl raw" "$(field "$tmp/os_start" ours_a 2)" "argon2 CLI" "$(field "$tmp/os_start" ref_a 2)" s "not subtracted from the rows above"
	jratio "$A64, minor page faults of one process" "kdfone -impl raw (x/crypto)" "$(field "$tmp/os_a64" raw 6)" "argon2 CLI" "$(field "$tmp/os_a64" ref 6)" faults "getrusage ru_minflt, median of $RUNS_ARGON2 runs"
	jratio "$A64, peak RSS of one process" "kdfone: kdf.Hasher.Hash" "$(field "$tmp/os_a64" hasher 5)" "argon2 CLI" "$(field "$tmp/os_a64" ref 5)" KiB "getrusage ru_maxrss, largest of $RUNS_ARGON2 runs"
	if [ -n "$warmref" ]; then
		warm="in one process, repeated; median of $ROUNDS alternating rounds"
		jratio "$A64, warm" "kdf.Hasher.Verify (go test -bench)" "$(gobench BenchmarkVerify/argon2id/m=65536,t=2,p=1)" "libargon2 in a loop (bench/ref/refloop.c)" "$w_a64" s "$warm"
		jratio "$A64, warm, bare primitive" "x/crypto argon2.IDKey (go test -bench)" "$(gobench BenchmarkArgon2id/m=65536,t=2,p=1)" "libargon2 in a loop (bench/ref/refloop.c)" "$w_a64" s "$warm"
		jratio "$A19, warm" "kdf.Hasher.Verify (go test -bench)" "$(gobench BenchmarkVerify/argon2id/m=19456,t=2,p=1)" "libargon2 in a loop (bench/ref/refloop.c)" "$w_a19" s "$warm"
		jratio "$A19, warm, bare primitive" "x/crypto argon2.IDKey (go test -bench)" "$(gobench BenchmarkArgon2id/m=19456,t=2,p=1)" "libargon2 in a loop (bench/ref/refloop.c)" "$w_a19" s "$warm"
		jratio "$P6, warm" "kdf.Hasher.Verify (go test -bench)" "$(gobench BenchmarkVerify/pbkdf2-sha256/i=600000)" "libcrypto PKCS5_PBKDF2_HMAC in a loop (bench/ref/refloop.c)" "$w_p" s "$warm"
		jratio "$P6, warm, bare primitive" "crypto/pbkdf2 (go test -bench)" "$(gobench BenchmarkPBKDF2SHA256/i=600000)" "libcrypto PKCS5_PBKDF2_HMAC in a loop (bench/ref/refloop.c)" "$w_p" s "$warm"
		if [ -n "$ref_faults" ]; then
			jratio "$A64, warm, minor page faults per call" "x/crypto argon2.IDKey, 8 calls in one process (kdfone -n 8)" "$go_faults" "libargon2, 8 calls in one process (refloop)" "$ref_faults" faults "(ru_minflt of the process) / 8: start-up and the first call's pages included"
		fi
	else
		printf '{"kind":"fact","table":"kdf","what":"warm rows","value":0,"unit":"rows","note":"not measured: bench/ref/refloop.c did not build (gcc, libargon2-1, libssl3)"}\n' >>"$BENCH_OUT"
		jfailed=1
	fi
	[ "$jfailed" = 0 ] || exit 1
fi
