#!/usr/bin/env bash
# bench/run.sh — runs every benchmark harness once and regenerates
# BENCHMARKS.md and bench/plots/*.png from the measurements of this run only.
#
#   bash bench/run.sh                 # the full run: about 15-25 minutes on 2 cores
#   BENCH_QUICK=1 bash bench/run.sh   # tiny counts and short rounds (a few minutes): tests the pipeline
#
# Sections, in order (each a harness that appends JSON Lines to one results
# file, see bench/README.md): kdf (bench/kdf.sh), vault and records,
# ratelimit, ratelimit-redis, sessions (bench/cmd/microbench), kdf-limits,
# unlock, middleware (the kdf, vault and session packages' Go benchmarks,
# whose reference runs in the same process), session (bench/session.sh),
# kdfmem (bench/kdfmem), load and storm (bench/load.sh,
# bench/storm.sh, when present), cluster (microbench -suite cluster, when
# internal/rediscluster is in the tree). The machine (CPU, flags, kernel,
# versions, load average before and after) is read here and written with
# the results. Then bench/render writes BENCHMARKS.md and the plots.
#
# Redis: KEYHOLD_TEST_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379/0
# if a server answers there. Everything written to it is under a prefix of
# this run (keyhold-bench-<run id>:), deleted when the run ends, however it
# ends (SCAN + UNLINK). The cluster section starts its own Redis nodes in
# the run's temporary directory and stops them. Temporary files are removed
# at exit.
#
# Tools: go, gcc, argon2, openssl, libargon2-1, libssl3, wrk, curl,
# redis-server, redis-cli, gnuplot (gnuplot-nox). Missing Debian packages
# are installed with apt-get when running as root (BENCH_NO_INSTALL=1: never).
#
# A section that fails is marked failed in BENCHMARKS.md, the others still
# run and are rendered, and the script exits 1. BENCH_SECTIONS="kdf vault"
# runs only those sections (for trying one out; the document then holds
# only them).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 1 ] || QUICK=0
run_id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
prefix="keyhold-bench-$run_id:"
work=$(mktemp -d "${TMPDIR:-/tmp}/keyhold-bench-XXXXXX")
results=$work/results.jsonl
: >"$results"
t_start=$(date +%s)

say() { printf '[run.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# ---- Redis and cleanup --------------------------------------------------------
REDIS=${KEYHOLD_TEST_REDIS_URL:-${REDIS_URL:-}}
if [ -z "$REDIS" ] && command -v redis-cli >/dev/null && [ "$(redis-cli -u redis://127.0.0.1:6379/0 PING 2>/dev/null)" = PONG ]; then
	REDIS=redis://127.0.0.1:6379/0
fi

# PostgreSQL, for the load and storm harnesses (each uses a schema of its
# own and drops it): KEYHOLD_TEST_POSTGRES_DSN, else the local test database
# if it answers.
PG=${KEYHOLD_TEST_POSTGRES_DSN:-}
if [ -z "$PG" ] && command -v psql >/dev/null &&
	[ "$(psql "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" -Atc 'SELECT 1' 2>/dev/null)" = 1 ]; then
	PG="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
fi

redis_sweep() { # delete every key of this run (prefix has no glob characters)
	[ -n "$REDIS" ] && command -v redis-cli >/dev/null || return 0
	local n=0 pat
	for pat in "$prefix*" "rate:$prefix*"; do
		while read -r k; do
			[ -n "$k" ] || continue
			redis-cli -u "$REDIS" UNLINK "$k" >/dev/null 2>&1 && n=$((n + 1))
		done < <(redis-cli -u "$REDIS" --scan --pattern "$pat" 2>/dev/null)
	done
	[ "$n" = 0 ] || say "deleted $n Redis keys left under $prefix"
}
child=""
descendants() { # the process ids under $1, deepest first
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		descendants "$c"
		echo "$c"
	done
}
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }'; } # field 22 of stat: start time since boot
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		# The running section, by process id: its harness traps TERM and
		# cleans up after itself (servers, keys, schemas, clusters,
		# temporary files), so it is asked first and given time; whatever
		# of its processes is still there after that is stopped.
		local pids="" d
		for d in $(descendants "$child"); do pids+=" $d:$(starttime "$d")"; done
		kill -TERM "$child" $(ps -o pid= --ppid "$child" 2>/dev/null) 2>/dev/null
		for _ in $(seq 300); do
			kill -0 "$child" 2>/dev/null || break
			sleep 0.1
		done
		local sig p
		for sig in TERM KILL; do
			for p in $pids; do
				# Only the same process (pid and start time), not a pid reused since.
				[ "$(starttime "${p%:*}")" = "${p#*:}" ] && kill -"$sig" "${p%:*}" 2>/dev/null
			done
			sleep 1
		done
		wait "$child" 2>/dev/null
	fi
	redis_sweep
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---- tools --------------------------------------------------------------------
need_pkgs=()
for pair in gcc:gcc argon2:argon2 openssl:openssl wrk:wrk curl:curl redis-server:redis-server redis-cli:redis-tools gnuplot:gnuplot-nox; do
	command -v "${pair%%:*}" >/dev/null || need_pkgs+=("${pair#*:}")
done
libs=$(ldconfig -p 2>/dev/null)
for lib in libargon2.so.1:libargon2-1 libcrypto.so.3:libssl3; do
	[[ $libs == *"${lib%%:*}"* ]] || need_pkgs+=("${lib#*:}")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && [ "${BENCH_NO_INSTALL:-}" != 1 ] && command -v apt-get >/dev/null; then
		say "installing ${need_pkgs[*]} (apt-get)"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"; } >"$work/apt.log" 2>&1 ||
			say "apt-get failed (see below); sections needing ${need_pkgs[*]} will fail: $(tail -2 "$work/apt.log" | tr '\n' ' ')"
	else
		say "missing: ${need_pkgs[*]}; sections that need them will fail"
	fi
fi
command -v go >/dev/null || { say "go not found"; exit 1; }

# ---- JSON helpers ---------------------------------------------------------------
jstr() { # a JSON string of $1
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=$(printf '%s' "$s" | tr '\n\t\r' '   ' | tr -d '\000-\037')
	printf '"%s"' "$s"
}
jline() { # kind what text
	printf '{"kind":%s,"what":%s,"text":%s}\n' "$(jstr "$1")" "$(jstr "$2")" "$(jstr "$3")" >>"$results"
}
jsection() { # table status seconds note
	printf '{"kind":"section","table":%s,"status":%s,"seconds":%s,"note":%s}\n' "$(jstr "$1")" "$(jstr "$2")" "$3" "$(jstr "$4")" >>"$results"
}

# ---- the machine ----------------------------------------------------------------
modver() { go list -m -f '{{.Version}}' "$1" 2>/dev/null || echo "not in go.mod"; }
dpkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
flags=$(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)
hasflag() { case " $flags " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
jline run mode "$([ "$QUICK" = 1 ] && echo quick || echo full)"
jline run started "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
jline run commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes in the tree)')"
jline run "load average before (1, 5, 15 min)" "$(cut -d' ' -f1-3 /proc/loadavg)"
jline machine "CPU model" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
jline machine "cores (nproc)" "$(nproc)"
jline machine "CPU flags" "SHA-NI $(hasflag sha_ni), AES-NI $(hasflag aes), PCLMULQDQ $(hasflag pclmulqdq), AVX $(hasflag avx), AVX2 $(hasflag avx2), AVX-512F $(hasflag avx512f), VAES $(hasflag vaes)"
jline machine "virtualization" "$(grep -q ' hypervisor ' <<<" $flags " && (systemd-detect-virt 2>/dev/null || echo 'yes (a virtual machine)') || echo 'none seen')"
jline machine memory "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
jline machine kernel "$(uname -sr)"
jline machine OS "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
jline machine Go "$(go version | cut -d' ' -f3-)"
jline machine "Go modules" "x/crypto $(modver golang.org/x/crypto), x/time $(modver golang.org/x/time), go-redis $(modver github.com/redis/go-redis/v9), redis_rate $(modver github.com/go-redis/redis_rate/v10), scs $(modver github.com/alexedwards/scs/v2)"
jline machine OpenSSL "$(openssl version 2>/dev/null || echo 'not found')"
jline machine "argon2 CLI, libargon2" "argon2 $(dpkgver argon2), libargon2-1 $(dpkgver libargon2-1)"
jline machine "C compiler (refloop)" "$(gcc --version 2>/dev/null | head -1 || echo 'not found')"
if [ -n "$REDIS" ]; then
	jline machine Redis "$(redis-cli -u "$REDIS" INFO server 2>/dev/null | tr -d '\r' | awk -F: '$1 == "redis_version" { print "redis " $2 " (the shared server, loopback)" }')"
else
	jline machine Redis "none: the Redis sections are not measured"
fi
jline machine PostgreSQL "$([ -n "$PG" ] && psql "$PG" -Atc 'SHOW server_version' 2>/dev/null | sed 's/^/PostgreSQL /;s/$/ (the shared server, loopback; load and storm only)/' || echo 'none: load and storm on SQLite only')"
jline machine "redis-server (cluster nodes)" "$(redis-server --version 2>/dev/null | cut -d' ' -f1-3 || echo 'not found')"
jline machine wrk "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
jline machine gnuplot "$(gnuplot --version 2>/dev/null || echo 'not found')"
say "run $run_id, $([ "$QUICK" = 1 ] && echo QUICK || echo full) mode, load average $(cut -d' ' -f1-3 /proc/loadavg), Redis ${REDIS:-none}, PostgreSQL $([ -n "$PG" ] && echo "yes (load and storm)" || echo none), results in $work"

# ---- build ----------------------------------------------------------------------
say "building bench/cmd/microbench and bench/render"
mkdir -p "$work/bin"
build_ok=1
go build -o "$work/bin/microbench" ./bench/cmd/microbench 2>"$work/build.log" || build_ok=0
go build -o "$work/bin/render" ./bench/render 2>>"$work/build.log" || { say "bench/render does not build:"; cat "$work/build.log"; exit 1; }
[ "$build_ok" = 1 ] || { say "bench/cmd/microbench does not build:"; cat "$work/build.log"; }

# ---- sections -------------------------------------------------------------------
failed=()
want() { [ -z "${BENCH_SECTIONS:-}" ] || [[ " $BENCH_SECTIONS " == *" $1 "* ]]; }
# section TABLE COMMAND...: runs it with its output shown and logged.
section() {
	local table=$1
	shift
	want "$table" || return 0
	local log=$work/$table.log t0 rc
	t0=$(date +%s)
	say "$table: started"
	("$@") > >(tee "$log" | sed -u "s/^/  $table | /") 2>&1 &
	child=$!
	wait "$child"
	rc=$?
	child=""
	sleep 0.2 # let tee finish
	local dt=$(($(date +%s) - t0))
	if [ "$rc" = 0 ]; then
		say "$table: ok in ${dt}s"
		jsection "$table" ok "$dt" ""
	else
		failed+=("$table")
		say "$table: FAILED (exit $rc) after ${dt}s"
		jsection "$table" failed "$dt" "exit status $rc; last lines of its output: $(grep -v '^\s*$' "$log" | tail -3 | tr '\n' ' ')"
	fi
}
skip() { # table status reason
	want "$1" || return 0
	say "$1: $2: $3"
	jsection "$1" "$2" 0 "$3"
}
mb() { "$work/bin/microbench" -out "$results" -prefix "$prefix" ${QUICK_FLAG:-} "$@"; }
[ "$QUICK" = 1 ] && QUICK_FLAG=-quick
export BENCH_OUT=$results BENCH_QUICK=$QUICK

# mbsection TABLE ARGS...: a section of bench/cmd/microbench.
mbsection() {
	want "$1" || return 0
	if [ "$build_ok" = 1 ]; then
		section "$@"
	else
		skip "$1" failed "bench/cmd/microbench does not build: $(head -3 "$work/build.log" | tr '\n' ' ')"
		failed+=("$1")
	fi
}

section kdf bash bench/kdf.sh
mbsection vault mb -suite vault
mbsection ratelimit mb -suite ratelimit
if [ -n "$REDIS" ]; then
	mbsection ratelimit-redis mb -suite ratelimit-redis -redis "$REDIS"
	mbsection sessions mb -suite sessions -redis "$REDIS"
else
	skip ratelimit-redis "not measured" "no Redis: set KEYHOLD_TEST_REDIS_URL"
	mbsection sessions mb -suite sessions
fi
# The packages' own Go benchmarks whose reference runs in the same process.
# gobench PKG BENCH-REGEXP BENCHTIME COUNT: benchmark lines, median ns/op per name (suffix -N dropped)
gobench() {
	go test -c -o "$work/bin/$(basename "$1").test" "./$1" || return 1
	(cd "$1" && "$work/bin/$(basename "$1").test" -test.run='^$' -test.bench="$2" -test.benchtime="$3" -test.count="$4") >"$work/gobench.txt" || return 1
	awk '/^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); for (i = 2; i < NF; i++) if ($(i + 1) == "ns/op") print n, $i }' "$work/gobench.txt" |
		sort -k1,1 -k2,2g | awk '{ v[$1] = v[$1] " " $2 } END { for (k in v) { c = split(substr(v[k], 2), a, " "); m = (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2; print k, m } }' | sort
}
# gratio TABLE WHAT OURS_LABEL OURS_NS REF_LABEL REF_NS UNIT DIVISOR NOTE
gratio() {
	[ -n "$4" ] && [ -n "$6" ] || { echo "no figure for $2" >&2; return 1; }
	printf '{"kind":"ratio","table":%s,"what":%s,"ours_label":%s,"ours":%s,"reference_label":%s,"reference":%s,"unit":%s,"lower_is_better":true,"note":%s}\n' \
		"$(jstr "$1")" "$(jstr "$2")" "$(jstr "$3")" "$(awk -v v="$4" -v d="$8" 'BEGIN { printf "%.6g", v / d }')" \
		"$(jstr "$5")" "$(awk -v v="$6" -v d="$8" 'BEGIN { printf "%.6g", v / d }')" "$(jstr "$7")" "$(jstr "$9")" >>"$results"
}
pick() { awk -v n="$1" '$1 == n { print $2 }' "$work/gobench.med"; }
limits_section() {
	local bt=3x
	[ "$QUICK" = 1 ] && bt=1x
	gobench kdf '^BenchmarkVerifyAtLimits$' "$bt" 1 >"$work/gobench.med" || return 1
	cat "$work/gobench.med"
	local def name ok=0
	def=$(awk '$1 ~ /^BenchmarkVerifyAtLimits\/default\// { print $1 }' "$work/gobench.med")
	[ -n "$def" ] || { echo "no default row" >&2; return 1; }
	for name in $(awk '$1 ~ /^BenchmarkVerifyAtLimits\/limit\// { print $1 }' "$work/gobench.med"); do
		gratio kdf-limits "${name#BenchmarkVerifyAtLimits/limit/}" "Hasher.Verify of a stored hash at this bound of kdf.DefaultLimits" "$(pick "$name")" \
			"Hasher.Verify at DefaultParams (${def#BenchmarkVerifyAtLimits/default/}), same process" "$(pick "$def")" s 1e9 "go test -bench, -benchtime=$bt, one process" || return 1
		ok=1
	done
	[ "$ok" = 1 ]
}
unlock_section() {
	local bt=5x count=3
	[ "$QUICK" = 1 ] && bt=1x count=1
	gobench vault '^BenchmarkUnlock$' "$bt" "$count" >"$work/gobench.med" || return 1
	cat "$work/gobench.med"
	local note="BenchmarkUnlock at the default slot parameters (Argon2id 64 MiB, t=3, p=4), median of $count, -benchtime=$bt (without-kdf: default benchtime)"
	gratio unlock "whole Vault.Unlock against its KDF" "Vault.Unlock (KDF, storage read, decode, unwrap, key schedule)" "$(pick BenchmarkUnlock/unlock)" \
		"the KDF alone (Hasher.DeriveKey)" "$(pick BenchmarkUnlock/kdf-only)" ms 1e6 "$note" &&
		gratio unlock "everything after the KDF, against the KDF" "Unlock without the KDF (read, decode, unwrap, key schedule)" "$(pick BenchmarkUnlock/without-kdf)" \
			"the KDF alone (Hasher.DeriveKey)" "$(pick BenchmarkUnlock/kdf-only)" ms 1e6 "$note"
}
middleware_section() {
	local bt=1s count=5
	[ "$QUICK" = 1 ] && bt=100ms count=1
	gobench session '^BenchmarkMiddleware$' "$bt" "$count" >"$work/gobench.med" || return 1
	cat "$work/gobench.med"
	local note="go test -bench BenchmarkMiddleware (httptest, no network), median of $count, -benchtime=$bt"
	local bare keyhold unlocked scs
	bare=$(pick BenchmarkMiddleware/bare) keyhold=$(pick BenchmarkMiddleware/keyhold) unlocked=$(pick BenchmarkMiddleware/keyhold-unlocked) scs=$(pick BenchmarkMiddleware/scs)
	gratio middleware "logged-in request, keyhold against scs" "keyhold Manager.Handler + RequireLogin (memstore)" "$keyhold" "scs/v2 LoadAndSave (its memstore)" "$scs" µs 1e3 "$note" &&
		gratio middleware "logged-in request against the bare handler" "keyhold Manager.Handler + RequireLogin (memstore)" "$keyhold" "bare handler" "$bare" µs 1e3 "$note" &&
		gratio middleware "unlocked request against the bare handler" "keyhold Manager.Handler + RequireUnlocked (memstore)" "$unlocked" "bare handler" "$bare" µs 1e3 "$note" &&
		gratio middleware "scs against the bare handler (the reference's own cost)" "scs/v2 LoadAndSave (its memstore)" "$scs" "bare handler" "$bare" µs 1e3 "$note"
}
if [ "$QUICK" = 1 ]; then
	skip kdf-limits "not measured" "left out of quick mode: each worst case costs about a second of one core, up to 256 MiB"
else
	section kdf-limits limits_section
fi
section unlock unlock_section
section middleware middleware_section
section session env KEYHOLD_TEST_REDIS_URL="$REDIS" REDIS_URL="$REDIS" bash bench/session.sh
kdfmem_args=()
[ "$QUICK" = 1 ] && kdfmem_args=(-calls 40 -m 16384)
# Two processes: the memory figures are each process's own.
section kdfmem bash -c 'go build -o "$1/kdfmem" ./bench/kdfmem && shift && "$0/kdfmem" -out "$BENCH_OUT" "$@" && "$0/kdfmem" -mode semaphore -out "$BENCH_OUT" "$@"' "$work/bin" "$work/bin" "${kdfmem_args[@]}"
# Their durations: short in quick mode; in the full run, 60 s of reads per
# target (the app, the bare server, the static route) on each backend.
if [ "$QUICK" = 1 ]; then
	export LOAD_DURATION=${LOAD_DURATION:-5s} STORM_DURATION=${STORM_DURATION:-5s}
else
	export LOAD_DURATION=${LOAD_DURATION:-60s} STORM_DURATION=${STORM_DURATION:-30s}
fi
for h in load storm; do
	if [ -f "bench/$h.sh" ]; then
		section "$h" env KEYHOLD_TEST_REDIS_URL="$REDIS" KEYHOLD_TEST_POSTGRES_DSN="$PG" bash "bench/$h.sh"
	else
		skip "$h" "not measured" "bench/$h.sh is not in this tree"
	fi
done
# Last: the cluster, which needs internal/rediscluster (another part of the work).
if [ ! -d internal/rediscluster ]; then
	skip cluster "not measured" "internal/rediscluster is not in this tree, so no cluster could be started"
elif ! command -v redis-server >/dev/null; then
	skip cluster "not measured" "redis-server not found (apt-get install redis-server)"
else
	mbsection cluster mb -suite cluster -dir "$work"
fi

# ---- render -----------------------------------------------------------------------
jline run "load average after (1, 5, 15 min)" "$(cut -d' ' -f1-3 /proc/loadavg)"
jline run "duration" "$(($(date +%s) - t_start)) s"
redis_sweep
jline run "Redis keys of this run left after the cleanup" "$([ -n "$REDIS" ] && redis-cli -u "$REDIS" --scan --pattern "$prefix*" 2>/dev/null | wc -l || echo 'no Redis')"
say "rendering BENCHMARKS.md and bench/plots/ from $(wc -l <"$results") lines"
mkdir -p bench/plots
rm -f bench/plots/*.png
if ! "$work/bin/render" -in "$results" -out BENCHMARKS.md -plots bench/plots; then
	say "render reported a problem"
	failed+=(render)
fi
[ -z "${BENCH_KEEP:-}" ] || cp "$results" "$BENCH_KEEP"
if [ ${#failed[@]} -gt 0 ]; then
	say "done in $(($(date +%s) - t_start))s; FAILED: ${failed[*]} (marked in BENCHMARKS.md)"
	exit 1
fi
say "done in $(($(date +%s) - t_start))s: BENCHMARKS.md and bench/plots/ written"
