// Command render writes BENCHMARKS.md and its PNG plots from the JSON Lines
// that one run of bench/run.sh collected (the format is in bench/README.md).
// Every number in the output comes from those lines; the prose around them
// says what each figure compares.
//
//	go run ./bench/render -in results.jsonl -out BENCHMARKS.md -plots bench/plots
//
// Plots are drawn by gnuplot (-gnuplot, default: found on PATH); without
// it, the document says so and gives the points as tables only.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// line is one JSON line; which fields are set depends on Kind.
type line struct {
	Kind  string `json:"kind"`
	Table string `json:"table"`
	What  string `json:"what"`
	Note  string `json:"note"`

	// ratio
	OursLabel     string   `json:"ours_label"`
	Ours          *float64 `json:"ours"`
	RefLabel      string   `json:"reference_label"`
	Ref           *float64 `json:"reference"`
	Unit          string   `json:"unit"`
	LowerIsBetter *bool    `json:"lower_is_better"`

	// point
	Series string   `json:"series"`
	X      *float64 `json:"x"`
	XLabel string   `json:"x_label"`
	Y      *float64 `json:"y"`
	YLabel string   `json:"y_label"`
	Plot   string   `json:"plot"`

	// fact
	Value *float64 `json:"value"`

	// machine, run
	Text string `json:"text"`

	// section
	Status  string   `json:"status"`
	Seconds *float64 `json:"seconds"`
}

// section is what the document says about one table id.
type section struct {
	title, intro string
}

// sections are the known tables, in the order they appear; tables not
// listed come after them, titled by their id.
var sections = []struct {
	id string
	section
}{
	{"kdf", section{"Password hashing: Argon2id and PBKDF2 against the C references",
		"Written by `bench/kdf.sh`. **One-shot** rows time a whole process that hashes once: ours is `bench/cmd/kdfone`, the reference the `argon2` CLI (`-r`) or `openssl kdf`, started in turn by `bench/cmd/interleave` (A B, B A, …) so that a drifting load hits both; process start-up is included on both sides and shown on its own row. **Warm** rows repeat the hash in one process: the `kdf` package's Go benchmarks against `bench/ref/refloop.c`, which calls libargon2 and libcrypto (the libraries behind the CLIs) in a loop and keeps its memory between calls (glibc's mmap threshold and trimming turned off), in alternating rounds. Both sides were checked to output the same bytes before timing. Page-fault rows count minor faults (getrusage) of the same processes."}},
	{"kdfmem", section{"Memory of concurrent verifications: the Gate against a plain semaphore",
		"Written by `bench/kdfmem`: a burst of concurrent `Verify` calls of one Argon2id hash, behind a `kdf.Gate` and behind a plain semaphore of the same size."}},
	{"kdf-limits", section{"Password hashing: the worst case each bound of kdf.DefaultLimits admits",
		"Written by `bench/run.sh` from `go test ./kdf -bench VerifyAtLimits`: a stored hash may have been written by whoever reached the database, so `kdf.DefaultLimits` bounds what one verification can cost. Each row verifies a hash at one bound's worst case, against a verification at `DefaultParams` in the same process (one run each, not interleaved)."}},
	{"vault", section{"Vault records: Seal and Open against raw AES-256-GCM",
		"Written by `bench/cmd/microbench -suite vault`. Ours is `vault.Unlocked.Seal`/`Open` (header, associated data of label, user, context and key version, key lookup); the reference is AES-256-GCM from `crypto/cipher` with a random nonce per Seal (`cipher.NewGCMWithRandomNonce`) on the same plaintext and context, nothing else. The four calls run in rotating order in every round; the figure is the median over rounds."}},
	{"records", section{"Growth: record size",
		"The same measurement as the vault table, per record size: time per call against plaintext size, keyhold and raw AES-256-GCM."}},
	{"unlock", section{"Vault unlock: the KDF against everything else",
		"Written by `bench/run.sh` from `go test ./vault -bench Unlock`: a whole `Vault.Unlock` at the default slot parameters, and the part after the KDF (storage read from memstore, decode, unwrap, AES key schedules), each against the KDF alone, in one process."}},
	{"ratelimit", section{"Rate limiting in memory: against golang.org/x/time/rate",
		"Written by `bench/cmd/microbench -suite ratelimit`. Ours is a `ratelimit.Limiter` on memstore (SHA-256 of every key, bounded memory, the same storage interface as SQL and Redis); the reference a map of `*rate.Limiter` under a mutex, the usual per-client use of x/time/rate (unbounded, one process). Same rule (1000 per second) and keys, rotating rounds."}},
	{"ratelimit-redis", section{"Rate limiting on Redis: against go-redis/redis_rate and a plain GET",
		"Written by `bench/cmd/microbench -suite ratelimit-redis`. Ours is a `ratelimit.Limiter` on `storage/redisstore` (GCRA in one Lua script); the references are `go-redis/redis_rate/v10`'s `Allow` (GCRA in Lua too) and a plain `GET` of an existing key, the cheapest round trip. Every decision is allowed, so both limiters write their state each time. Redis is the shared server of the machine, on loopback."}},
	{"session", section{"Session middleware over HTTP: against the bare handler and alexedwards/scs",
		"Written by `bench/session.sh`: `bench/cmd/sessionserver` serves the same handler bare, behind keyhold's session middleware and behind `scs/v2`'s `LoadAndSave`; `wrk` loads each route over loopback, routes alternating in every round. Throughput: a ratio below 1 means ours serves fewer requests per second than the reference. wrk, the server and Redis share the machine's cores."}},
	{"middleware", section{"Session middleware in process: against scs and the bare handler",
		"Written by `bench/run.sh` from `go test ./session -bench Middleware`: one authenticated request through `httptest`, no network, the same handler bare, behind keyhold and behind `scs/v2`'s `LoadAndSave`, in one process."}},
	{"sessions", section{"Growth: sessions stored",
		"Written by `bench/cmd/microbench -suite sessions`: sessions are stored (four per user, 256 bytes of data each) up to each count, then `GetSession` of a random stored session and `PutSession` updating one (conditional on its version) are timed serially, in memstore and in Redis (`storage/redisstore`, under a prefix of the run's own, deleted after), with a plain Redis `GET` of a value of similar size as the reference."}},
	{"cluster", section{"Growth: users per cluster node",
		"Written by `bench/cmd/microbench -suite cluster`, last in the run: a Redis Cluster of 3 masters and no replicas is started for the run (`internal/rediscluster`, its processes and files removed after), users are stored through `storage/redisstore` on a cluster client (one session each), and the keys each master holds (DBSIZE) are counted as the users grow. An even spread puts a third of the keys on each master. `GetSession` is then timed against a plain `GET` on the same cluster."}},
	{"load", section{"The web app under load: authenticated reads against a bare handler",
		"Written by `bench/load.sh` (`bench/cmd/loadgen -mode load`): clients, one per user, read the example web app's notes page (session read, vault key unsealed from the session, notes opened, page rendered) in a closed loop; the references, measured in the same run with the same clients, the targets taking turns in slices, are a bare `net/http` handler in its own process answering the same bytes and the app's own static route. Per storage (SQLite; PostgreSQL + Redis when available)."}},
	{"storm", section{"The web app under a login storm",
		"Written by `bench/storm.sh` (`bench/cmd/loadgen -mode storm`): the example web app at its real KDF parameters and gate; legitimate users log in alone (the baseline), then again while a flood of clients posts logins to a few attacked accounts. The rows give the app's peak RSS against the KDF gate's budget plus a margin, the users' login latency and successes against the baseline, and what the flood was answered."}},
}

type doc struct {
	lines    []line
	machine  []line
	run      []line
	sections map[string][]line // section status lines by table
	tables   map[string][]line // ratio, point, fact by table
	order    []string
	bad      []string // lines that could not be read
}

func parse(r io.Reader) *doc {
	d := &doc{sections: map[string][]line{}, tables: map[string][]line{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			d.bad = append(d.bad, fmt.Sprintf("line %d: %v", n, err))
			continue
		}
		if msg := l.check(); msg != "" {
			d.bad = append(d.bad, fmt.Sprintf("line %d: %s", n, msg))
			continue
		}
		d.lines = append(d.lines, l)
		switch l.Kind {
		case "machine":
			d.machine = append(d.machine, l)
		case "run":
			d.run = append(d.run, l)
		case "section":
			d.sections[l.Table] = append(d.sections[l.Table], l)
			d.addTable(l.Table)
		default:
			d.tables[l.Table] = append(d.tables[l.Table], l)
			d.addTable(l.Table)
		}
	}
	if err := sc.Err(); err != nil {
		d.bad = append(d.bad, err.Error())
	}
	return d
}

func (l line) check() string {
	finite := func(p *float64) bool { return p != nil && !math.IsNaN(*p) && !math.IsInf(*p, 0) }
	switch l.Kind {
	case "ratio":
		if l.Table == "" || !finite(l.Ours) || !finite(l.Ref) || l.LowerIsBetter == nil {
			return "ratio without table, ours, reference or lower_is_better"
		}
	case "point":
		if l.Table == "" || !finite(l.X) || !finite(l.Y) || l.Series == "" {
			return "point without table, series, x or y"
		}
	case "fact":
		if l.Table == "" || !finite(l.Value) {
			return "fact without table or value"
		}
	case "machine", "run":
		if l.What == "" {
			return l.Kind + " without what"
		}
	case "section":
		if l.Table == "" || l.Status == "" {
			return "section without table or status"
		}
	default:
		return fmt.Sprintf("unknown kind %q", l.Kind)
	}
	return ""
}

func (d *doc) addTable(t string) {
	if !slices.Contains(d.order, t) {
		d.order = append(d.order, t)
	}
}

// tableOrder is the known sections in their order, then the others as
// they came.
func (d *doc) tableOrder() []string {
	var out []string
	for _, s := range sections {
		if slices.Contains(d.order, s.id) {
			out = append(out, s.id)
		}
	}
	for _, t := range d.order {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func sectionOf(id string) section {
	for _, s := range sections {
		if s.id == id {
			return s.section
		}
	}
	return section{title: id}
}

// num formats a measured number: 3 significant digits, thousands
// separated, no exponent.
func num(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1000 {
		s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	digits := max(0, 2-int(math.Floor(math.Log10(a))))
	return strconv.FormatFloat(v, 'f', digits, 64)
}

func ratioText(l line) string {
	if *l.Ref == 0 {
		return "n/a (reference 0)"
	}
	r := *l.Ours / *l.Ref
	if math.Abs(r) < 0.1 {
		return num(r) // 3 significant digits: 0.00 would hide a small part
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// plotter makes PNGs; nil gnuplot means none are made.
type plotter struct {
	gnuplot string
	dir     string // where PNGs go
	rel     string // how the document refers to dir
	made    map[string]string
	errs    map[string]string
}

func render(d *doc, p *plotter) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# keyhold benchmarks\n\n")
	w("<!-- Generated by bench/run.sh through bench/render from the measurements of one run. Do not edit: run `bash bench/run.sh` again. -->\n\n")
	w("Every figure below was measured in the run described here, and every comparison is a ratio against a reference measured in the same run, on the same machine, in alternating or rotating rounds where the harness allows it. **ratio = ours / reference.** For times, faults and memory, below 1 means ours is lower (faster, fewer, smaller); for throughput (req/s), above 1 means ours serves more. Nothing here is copied from an earlier run.\n\n")
	for _, l := range d.run {
		if l.What == "mode" && l.Text == "quick" {
			w("> **Quick mode run (BENCH_QUICK=1): tiny counts and short rounds, to test the pipeline. These figures are not benchmarks.**\n\n")
		}
	}
	failed := d.failedSections()
	if len(failed) > 0 {
		w("> **Sections that failed in this run: %s.** Their tables hold only what was written before the failure.\n\n", strings.Join(failed, ", "))
	}
	if len(d.run) > 0 || len(d.machine) > 0 {
		w("## The run and the machine\n\n| what | value |\n| --- | --- |\n")
		for _, l := range append(slices.Clone(d.run), d.machine...) {
			w("| %s | %s |\n", esc(l.What), esc(l.Text))
		}
		w("\n")
	}
	if len(d.bad) > 0 {
		w("Lines of the results that could not be read (left out): %d.\n\n", len(d.bad))
	}
	for _, id := range d.tableOrder() {
		s := sectionOf(id)
		w("## %s\n\n", s.title)
		if s.intro != "" {
			w("%s\n\n", s.intro)
		}
		for _, st := range d.sections[id] {
			switch st.Status {
			case "ok":
			case "failed":
				w("> **This section failed in this run.** %s\n\n", st.Note)
			case "not measured":
				w("> **Not measured in this run:** %s\n\n", st.Note)
			default:
				w("> **Not measured in this run (%s):** %s\n\n", st.Status, st.Note)
			}
		}
		rows := d.tables[id]
		var ratios, points, facts []line
		for _, l := range rows {
			switch l.Kind {
			case "ratio":
				ratios = append(ratios, l)
			case "point":
				points = append(points, l)
			case "fact":
				facts = append(facts, l)
			}
		}
		if len(ratios) > 0 {
			w("| what | ours | reference | ours | reference | ratio | note |\n| --- | --- | --- | ---: | ---: | ---: | --- |\n")
			for _, l := range ratios {
				w("| %s | %s | %s | %s %s | %s %s | **%s** | %s |\n", esc(l.What), esc(l.OursLabel), esc(l.RefLabel),
					num(*l.Ours), esc(l.Unit), num(*l.Ref), esc(l.Unit), ratioText(l), esc(l.Note))
			}
			w("\n")
		}
		if len(points) > 0 {
			renderPoints(&b, points, p)
		}
		if len(facts) > 0 {
			w("| fact | value | note |\n| --- | ---: | --- |\n")
			for _, l := range facts {
				w("| %s | %s %s | %s |\n", esc(l.What), num(*l.Value), esc(l.Unit), esc(l.Note))
			}
			w("\n")
		}
		if len(rows) == 0 && len(d.sections[id]) > 0 && d.sections[id][len(d.sections[id])-1].Status == "ok" {
			w("The harness wrote no figures.\n\n")
		}
	}
	return b.String()
}

func (d *doc) failedSections() []string {
	var out []string
	for _, id := range d.tableOrder() {
		for _, st := range d.sections[id] {
			if st.Status == "failed" {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// renderPoints writes, per plot, the picture and a table of its points.
func renderPoints(b *strings.Builder, points []line, p *plotter) {
	byPlot := map[string][]line{}
	var plots []string
	for _, l := range points {
		name := cmp.Or(l.Plot, l.Table)
		if _, ok := byPlot[name]; !ok {
			plots = append(plots, name)
		}
		byPlot[name] = append(byPlot[name], l)
	}
	for _, name := range plots {
		pts := byPlot[name]
		var series []string
		var xs []float64
		for _, l := range pts {
			if !slices.Contains(series, l.Series) {
				series = append(series, l.Series)
			}
			if !slices.Contains(xs, *l.X) {
				xs = append(xs, *l.X)
			}
		}
		slices.Sort(xs)
		xl, yl := pts[0].XLabel, pts[0].YLabel
		if p != nil {
			if file, ok := p.made[name]; ok {
				fmt.Fprintf(b, "![%s against %s](%s)\n\n", yl, xl, file)
			} else if msg, ok := p.errs[name]; ok {
				fmt.Fprintf(b, "Plot `%s` not made: %s.\n\n", name, msg)
			}
		}
		fmt.Fprintf(b, "| %s |", esc(xl))
		for _, s := range series {
			fmt.Fprintf(b, " %s |", esc(s))
		}
		b.WriteString("\n| ---: |" + strings.Repeat(" ---: |", len(series)) + "\n")
		for _, x := range xs {
			fmt.Fprintf(b, "| %s |", num(x))
			for _, s := range series {
				v := ""
				for _, l := range pts {
					if l.Series == s && *l.X == x {
						v = num(*l.Y)
					}
				}
				fmt.Fprintf(b, " %s |", v)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "\n(%s)\n\n", esc(yl))
	}
}

// makePlots draws every plot of the document with gnuplot.
func (p *plotter) makePlots(d *doc) {
	p.made, p.errs = map[string]string{}, map[string]string{}
	byPlot := map[string][]line{}
	var names []string
	for _, l := range d.lines {
		if l.Kind != "point" {
			continue
		}
		name := cmp.Or(l.Plot, l.Table)
		if _, ok := byPlot[name]; !ok {
			names = append(names, name)
		}
		byPlot[name] = append(byPlot[name], l)
	}
	for _, name := range names {
		if p.gnuplot == "" {
			p.errs[name] = "gnuplot not found (apt-get install gnuplot-nox)"
			continue
		}
		if err := p.plot(name, byPlot[name]); err != nil {
			p.errs[name] = err.Error()
			continue
		}
		p.made[name] = filepath.ToSlash(filepath.Join(p.rel, name+".png"))
	}
}

func safeName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

func gpString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ").Replace(s) + `"`
}

func (p *plotter) plot(name string, pts []line) error {
	if !safeName(name) {
		return fmt.Errorf("plot name %q is not [a-z0-9_-]", name)
	}
	var series []string
	allPos := true
	for _, l := range pts {
		if !slices.Contains(series, l.Series) {
			series = append(series, l.Series)
		}
		if *l.X <= 0 || *l.Y <= 0 {
			allPos = false
		}
	}
	var script bytes.Buffer
	fmt.Fprintf(&script, "set terminal pngcairo size 900,560 noenhanced font \"sans,10\"\nset output %s\n", gpString(filepath.Join(p.dir, name+".png")))
	fmt.Fprintf(&script, "set xlabel %s\nset ylabel %s\nset key below\nset grid\n", gpString(pts[0].XLabel), gpString(pts[0].YLabel))
	if allPos {
		script.WriteString("set logscale xy\nset format x \"%.0s%c\"\n")
	}
	script.WriteString("plot ")
	for i, s := range series {
		if i > 0 {
			script.WriteString(", ")
		}
		fmt.Fprintf(&script, "'-' using 1:2 with linespoints title %s", gpString(s))
	}
	script.WriteString("\n")
	for _, s := range series {
		var xy [][2]float64
		for _, l := range pts {
			if l.Series == s {
				xy = append(xy, [2]float64{*l.X, *l.Y})
			}
		}
		slices.SortFunc(xy, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
		for _, v := range xy {
			fmt.Fprintf(&script, "%g %g\n", v[0], v[1])
		}
		script.WriteString("e\n")
	}
	cmd := exec.Command(p.gnuplot)
	cmd.Stdin = &script
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gnuplot: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func main() {
	in := flag.String("in", "", "JSON Lines of the run (required)")
	out := flag.String("out", "BENCHMARKS.md", "document to write")
	plots := flag.String("plots", "bench/plots", "directory for the PNG plots")
	rel := flag.String("plots-ref", "", "how the document refers to -plots (default: relative to -out)")
	gnuplot := flag.String("gnuplot", "", "gnuplot binary (default: gnuplot on PATH; \"none\": no plots)")
	flag.Parse()
	if *in == "" {
		log.Fatal("render: -in is required")
	}
	f, err := os.Open(*in)
	if err != nil {
		log.Fatal(err)
	}
	d := parse(f)
	f.Close()
	for _, msg := range d.bad {
		log.Printf("render: %s", msg)
	}
	p := &plotter{dir: *plots, rel: *rel}
	if p.rel == "" {
		if r, err := filepath.Rel(filepath.Dir(*out), *plots); err == nil {
			p.rel = r
		} else {
			p.rel = *plots
		}
	}
	switch *gnuplot {
	case "none":
	case "":
		p.gnuplot, _ = exec.LookPath("gnuplot")
	default:
		p.gnuplot = *gnuplot
	}
	if p.gnuplot != "" {
		if err := os.MkdirAll(*plots, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	p.makePlots(d)
	for name, msg := range p.errs {
		log.Printf("render: plot %s: %s", name, msg)
	}
	if err := os.WriteFile(*out, []byte(render(d, p)), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("render: wrote %s (%d lines of results, %d plots)", *out, len(d.lines), len(p.made))
	if len(d.bad) > 0 {
		os.Exit(1)
	}
}
