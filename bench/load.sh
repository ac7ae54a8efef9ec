#!/usr/bin/env bash
# bench/load.sh — authenticated reads of the web app (examples/webapp)
# against a bare net/http handler, in one run (bench/cmd/loadgen -mode load).
#
# Usage: bash bench/load.sh   (from anywhere; about 3.5 minutes per storage
# with the default LOAD_DURATION of 60s: three targets measured 60 s each)
#
# It builds bench/cmd/loadgen, which builds the web app and the bare server
# into a temporary directory and starts them on free loopback ports. 16
# users sign up through the forms, add 5 notes each, log out and log in
# (which unlocks their vault); then 16 clients, one per user, read the
# notes page (GET /notes: the session read, the vault key unsealed from the
# session, 5 notes opened, the page rendered) in a closed loop. The
# references, measured in the same run with the same clients, the targets
# taking turns in 5 s slices: a bare net/http handler in its own process
# (bench/cmd/loadgen/bareserver) answering the same page's bytes and
# headers, and the app's own static route (GET /static/style.css, no
# session cookie). Rows (table "load"): ratios of the app to each reference
# for requests/s, p50 and p99, and the request and error counts.
#
# Storage: SQLite always; PostgreSQL + Redis too when KEYHOLD_TEST_POSTGRES_DSN
# and KEYHOLD_TEST_REDIS_URL are set (a fresh schema, dropped after, and a
# key prefix of the run's own, whose keys are deleted after: never a flush).
#
# Environment: BENCH_OUT (file the JSON Lines are appended to; default:
# standard output), LOAD_DURATION (per target, default 60s), LOAD_ARGS (more
# loadgen flags, e.g. "-concurrency 32 -notes 20"). Progress goes to
# standard error. Ctrl-C or SIGTERM stops the servers and removes the
# schema, the Redis keys and the temporary files.
set -euo pipefail
exec bash "$(dirname "$0")/loadgen-run.sh" load "${LOAD_DURATION:-60s}" "${LOAD_ARGS:-}"
