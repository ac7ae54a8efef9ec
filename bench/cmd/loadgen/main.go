// Command loadgen is the load harness of the web app (examples/webapp).
// It builds the app and a bare reference server into a temporary
// directory, starts them on free loopback ports, creates users through
// the app's forms, and measures, in one of two modes:
//
//   - -mode=load: authenticated reads of unlocked, sealed notes (GET
//     /notes by logged-in users whose vault is unlocked), closed loop with
//     -concurrency clients for -duration, against two references measured
//     in the same run, the targets taking turns in -slice slices: a bare
//     net/http handler in a process of its own that answers the same bytes
//     (bench/cmd/loadgen/bareserver), and the app's own static file route
//     (GET /static/style.css without a session cookie). Throughput, p50
//     and p99 as ratios to each reference.
//   - -mode=storm: a login storm. -flood clients post logins to -attacked
//     accounts (wrong passwords, every -right-every-th the right one),
//     each from a loopback address of its own that it replaces when the
//     app answers 429, while -legit users log in to their own accounts
//     again and again. It reports the app's peak RSS (VmHWM) against its
//     KDF gate's memory budget plus a margin, the legitimate users' login
//     latency and successes, the flood's 429s and queue refusals (503),
//     and each attacked account's share.
//
// The app runs with its real parameters (vault keys under Argon2id
// 64 MiB, kdf.SensitiveParams; its default KDF gate) on SQLite, or on
// PostgreSQL and Redis (-storage postgres+redis with -postgres and
// -redis): a fresh schema and Redis key prefix of the run's own, dropped
// and deleted at the end, also after SIGINT or SIGTERM. Results are JSON
// Lines in the shared bench format, appended to -out (tables "load" and
// "storm"); progress goes to standard error.
//
// Every simulated client connects from its own address in 127.0.0.0/8
// (Linux routes the whole block to the loopback interface): the app
// limits logins and sign-ups per client address.
//
// Run it from the repository (bench/load.sh and bench/storm.sh do):
//
//	go run ./bench/cmd/loadgen -mode load -duration 60s -out results.jsonl
//	go run ./bench/cmd/loadgen -mode storm -duration 30s -out results.jsonl
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "load", "load (reads of sealed notes against references) or storm (the login storm)")
	out := fs.String("out", "", "file to append the JSON Lines results to (default: standard output)")
	storages := fs.String("storage", "sqlite", "comma list of sqlite and postgres+redis: where the app keeps its state, one run each")
	pgDSN := fs.String("postgres", "", "PostgreSQL DSN for postgres+redis (the run creates and drops a schema of its own in it)")
	redisURL := fs.String("redis", "", "Redis URL for postgres+redis (the run uses a key prefix of its own and deletes its keys)")
	duration := fs.Duration("duration", 0, "load: the time measured per target (default 60s); storm: the flood's (default 30s)")
	logsDir := fs.String("logs", "", "directory to copy the servers' logs to after each run (default: none; they go with the temporary directory)")
	note := fs.String("note", "", "added to every row's note (e.g. what else ran on the machine)")
	// load
	conc := fs.Int("concurrency", 16, "load: clients, each a user of its own sending its next request when the last is answered")
	notes := fs.Int("notes", 5, "load: notes per user")
	sliceLen := fs.Duration("slice", 5*time.Second, "load: the targets take turns in slices of this long")
	warmup := fs.Duration("warmup", 2*time.Second, "load: per target, before measuring, not counted")
	staticRef := fs.Bool("static-ref", true, "load: also measure the app's static file route as a reference")
	// storm
	flood := fs.Int("flood", 500, "storm: concurrent flood clients")
	floodAddrs := fs.Int("flood-addrs", 0, "storm: loopback addresses the flood clients start from, shared in turn; each client moves to a fresh one after a 429 of the per-address login limit (default: one per twice as many clients as an address may have logins in progress at the app's admission gate, so that the flood meets that bound too)")
	legit := fs.Int("legit", 20, "storm: legitimate users")
	attacked := fs.Int("attacked", 4, "storm: accounts the flood is spread over")
	rightEvery := fs.Int("right-every", 10, "storm: every Nth flood attempt carries the right password (0: never)")
	legitPause := fs.Duration("legit-pause", 2*time.Second, "storm: a legitimate user's pause between logins")
	retryPause := fs.Duration("retry-pause", time.Second, "storm: a legitimate user's pause before trying again after a refusal")
	baseline := fs.Duration("baseline", -1, "storm: before the flood, the legitimate users log in alone this long, the reference of their latency under the flood (default: -duration; 0: not)")
	grace := fs.Duration("grace", 20*time.Second, "storm: how long a legitimate user not logged in during the flood keeps trying after it")
	otherMiB := fs.Uint64("margin-other-mib", 64, "storm: the margin's allowance, MiB, for the app's memory outside the KDF (the margin is this + one 64 MiB vault run)")
	check := fs.Bool("check", false, "storm: exit 1 if the storm breaks a claim (peak RSS over budget + margin, a legitimate user never logged in, no 429 or 503, a 5xx, a panic)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *duration == 0 {
		*duration = map[string]time.Duration{"load": time.Minute, "storm": 30 * time.Second}[*mode]
	}
	if *mode != "load" && *mode != "storm" || *duration <= 0 || *conc < 1 || *notes < 1 || *flood < 1 || *legit < 1 || *attacked < 1 || *rightEvery < 0 || *sliceLen <= 0 {
		fmt.Fprintln(stderr, "loadgen: bad flags: -mode load|storm, positive -duration, -slice, -concurrency, -notes, -flood, -legit, -attacked")
		return 2
	}
	var kinds []string
	for k := range strings.SplitSeq(*storages, ",") {
		k = strings.TrimSpace(k)
		if k != "sqlite" && k != "postgres+redis" {
			fmt.Fprintf(stderr, "loadgen: -storage: %q is neither sqlite nor postgres+redis\n", k)
			return 2
		}
		if k == "postgres+redis" && (*pgDSN == "" || *redisURL == "") {
			fmt.Fprintln(stderr, "loadgen: -storage postgres+redis needs -postgres and -redis")
			return 2
		}
		kinds = append(kinds, k)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	dir, err := os.MkdirTemp("", "keyhold-loadgen-")
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "loadgen: building the web app and the bare server into %s\n", dir)
	bins, err := build(ctx, dir)
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted while building; cleaned up")
		}
		fmt.Fprintln(stderr, "loadgen:", err)
		return 1
	}
	status := 0
	for i, kind := range kinds {
		runDir := filepath.Join(dir, fmt.Sprintf("run%d", i))
		if err := os.Mkdir(runDir, 0o700); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		var st storage
		if kind == "postgres+redis" {
			if st, err = newStorage(ctx, *pgDSN, *redisURL); err != nil {
				fmt.Fprintln(stderr, "loadgen:", err)
				return 1
			}
		} else {
			st = storage{name: "sqlite"}
		}
		var r rows
		before := loadavg()
		switch *mode {
		case "load":
			cfg := loadConfig{Duration: *duration, Slice: *sliceLen, Warmup: *warmup, Concurrency: *conc, Notes: *notes, StaticRef: *staticRef, Log: stderr}
			var res *loadResult
			if res, err = runLoad(ctx, bins, runDir, st, cfg); err == nil {
				loadRows(&r, res, cfg, runNote(*note, before, fmt.Sprintf("%s per target in %s slices, interleaved", cfg.Duration, cfg.Slice)))
			}
		case "storm":
			if *baseline < 0 {
				*baseline = *duration
			}
			if *floodAddrs == 0 {
				if *floodAddrs, err = defaultFloodAddrs(*flood); err != nil {
					break
				}
			}
			cfg := stormConfig{Duration: *duration, Flood: *flood, FloodAddrs: *floodAddrs, Legit: *legit, Attacked: *attacked, RightEvery: *rightEvery,
				Baseline: *baseline, LegitPause: *legitPause, RetryPause: *retryPause, Grace: *grace, OtherKiB: *otherMiB * 1024, Log: stderr}
			var res *stormResult
			if res, err = runStorm(ctx, bins, runDir, st, cfg); err == nil {
				stormRows(&r, res, cfg, runNote(*note, before, ""))
				if cerr := checkStorm(res, cfg); cerr != nil {
					fmt.Fprintf(stderr, "loadgen: the storm on %s broke a claim:\n%v\n", st.name, cerr)
					if *check {
						status = 1
					}
				}
			}
		}
		if *logsDir != "" {
			if lerr := copyLogs(runDir, *logsDir, fmt.Sprintf("%s-%s-", *mode, strings.ReplaceAll(st.name, "+", "-"))); lerr != nil {
				fmt.Fprintln(stderr, "loadgen: copying logs:", lerr)
			}
		}
		if msg, cerr := st.cleanup(); cerr != nil {
			fmt.Fprintln(stderr, "loadgen: cleanup:", cerr)
			status = 1
		} else if msg != "" {
			fmt.Fprintln(stderr, "loadgen:", msg)
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(stderr, "loadgen: interrupted; cleaned up")
			} else {
				fmt.Fprintln(stderr, "loadgen:", err)
			}
			return 1
		}
		if err := r.write(w); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
	}
	return status
}

// runNote says where and when a run was measured: the machine and its
// load average before and after, which on a shared machine tells how much
// else ran.
func runNote(extra, before, what string) string {
	parts := []string{fmt.Sprintf("%s, %s/%s, %d CPUs, load average before %s, after %s",
		time.Now().UTC().Format("2006-01-02 15:04Z"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), before, loadavg())}
	if what != "" {
		parts = append(parts, what)
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return strings.Join(parts, "; ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// copyLogs copies the *.log files of dir into to, their names prefixed.
func copyLogs(dir, to, prefix string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, prefix+filepath.Base(l)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
