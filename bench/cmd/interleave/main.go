// Command interleave times whole processes for bench/kdf.sh. It runs each
// command once per round, in alternating order (A B, then B A, …) so that
// a machine whose speed drifts during the run (a shared VM, other jobs)
// slows every command alike, and prints one tab-separated line per command:
//
//	label  median_wall_s  min_wall_s  median_cpu_s  max_rss_kib  median_minor_faults  first_output_line
//
// Wall time runs from just before the process is started to just after it
// has been reaped, the same for every command; CPU is user+system time of
// the process, max RSS its peak resident set, minor faults the page faults
// served without I/O (getrusage: ru_maxrss, ru_minflt). Nothing is
// subtracted. Each command gets -stdin on its standard input.
//
//	interleave -n 15 -warmup 1 -stdin password \
//	    ours 'kdfone -m 65536' ref 'argon2 saltsaltsaltsalt -id -k 65536 -r'
//
// Commands are split on spaces (no shell, no quoting).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

type result struct {
	wall, cpu []time.Duration
	minflt    []time.Duration // counts, kept as Durations to share median
	maxRSS    int64
	out       string
}

func main() {
	n := flag.Int("n", 11, "timed rounds")
	warmup := flag.Int("warmup", 1, "untimed rounds first")
	stdin := flag.String("stdin", "", "standard input of every command")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 || len(args)%2 != 0 {
		fmt.Fprintln(os.Stderr, "usage: interleave [-n N] [-warmup N] [-stdin S] label 'command args' [label 'command args']...")
		os.Exit(2)
	}
	labels := make([]string, 0, len(args)/2)
	cmds := make([][]string, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		labels = append(labels, args[i])
		cmds = append(cmds, strings.Fields(args[i+1]))
	}
	res := make([]result, len(cmds))
	for round := -*warmup; round < *n; round++ {
		order := make([]int, len(cmds))
		for i := range order {
			order[i] = i
		}
		if round%2 != 0 {
			slices.Reverse(order)
		}
		for _, i := range order {
			wall, cpu, rss, flt, out, err := runOnce(cmds[i], *stdin)
			if err != nil {
				fmt.Fprintf(os.Stderr, "interleave: %s: %v\n%s", labels[i], err, out)
				os.Exit(1)
			}
			if round < 0 {
				continue
			}
			r := &res[i]
			r.wall = append(r.wall, wall)
			r.cpu = append(r.cpu, cpu)
			r.minflt = append(r.minflt, time.Duration(flt))
			r.maxRSS = max(r.maxRSS, rss)
			if r.out == "" {
				r.out, _, _ = strings.Cut(strings.TrimSpace(out), "\n")
			}
		}
	}
	for i, r := range res {
		fmt.Printf("%s\t%.6f\t%.6f\t%.6f\t%d\t%.0f\t%s\n", labels[i], median(r.wall), slices.Min(r.wall).Seconds(), median(r.cpu), r.maxRSS, median(r.minflt)*1e9, r.out)
	}
}

func runOnce(argv []string, stdin string) (wall, cpu time.Duration, maxRSS, minflt int64, out string, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if err != nil {
		return 0, 0, 0, 0, buf.String(), err
	}
	cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss
		minflt = ru.Minflt
	}
	return wall, cpu, maxRSS, minflt, buf.String(), nil
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return m.Seconds()
}
