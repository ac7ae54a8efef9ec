#!/usr/bin/env bash
# bench/storm.sh — a login storm on the web app (examples/webapp) at its real
# parameters (vault keys under Argon2id 64 MiB, t=3, p=4; its default KDF
# gate): bench/cmd/loadgen -mode storm.
#
# Usage: bash bench/storm.sh   (from anywhere; about 2.5 minutes per storage
# with the defaults on 2 idle cores, more on a busy machine)
#
# It builds bench/cmd/loadgen, which builds the web app into a temporary
# directory and starts it on a free loopback port. 4 attacked accounts and
# 20 legitimate users sign up through the form. First the 20 users log in
# alone for STORM_DURATION (the baseline: login, log out, 2 s pause, again;
# a refused login is tried again after 1 s). Then, for STORM_DURATION, 500
# flood clients post logins to the attacked accounts in a closed loop
# (wrong passwords, every 10th attempt the right one), from 100 loopback
# addresses shared 5 to 1, each client moving to a fresh address when it
# gets 429, while the 20 users go on logging in (each login from an address
# of its own: the app's limit of 5 logins per 15 minutes per address would
# refuse a user logging in this often). Rows (table "storm"): the app's peak
# RSS (VmHWM, reset when the storm begins) against the KDF gate's memory
# budget plus a margin (one 64 MiB vault KDF run, by which the kdf package
# documents RSS may exceed the budget while freed pages return, + 64 MiB for
# the rest of the process: Go runtime, database pools, templates, the
# connections; the RSS at start is reported beside it); the legitimate
# users' login p50/p99 and successes, against the baseline as ratios; the
# flood's answers (429, queue refusals: 503 with the app's "busy" page,
# 401, successes) and each attacked account's share. Whatever breaks a claim
# (peak over budget + margin, a legitimate user never logged in, no 429 or
# 503, another 5xx, a panic) is printed to standard error.
#
# Storage: SQLite always; PostgreSQL + Redis too when KEYHOLD_TEST_POSTGRES_DSN
# and KEYHOLD_TEST_REDIS_URL are set (a fresh schema, dropped after, and a
# key prefix of the run's own, whose keys are deleted after: never a flush).
#
# Environment: BENCH_OUT (file the JSON Lines are appended to; default:
# standard output), STORM_DURATION (of the baseline and of the flood, default
# 30s), STORM_ARGS (more loadgen flags, e.g. "-flood 1000 -legit 50
# -logs /tmp/storm-logs"). Progress goes to standard error. Ctrl-C or SIGTERM
# stops the app and removes the schema, the Redis keys and the temporary files.
set -euo pipefail
exec bash "$(dirname "$0")/loadgen-run.sh" storm "${STORM_DURATION:-30s}" "${STORM_ARGS:-}"
