package main

import (
	"strings"
	"testing"
)

const fixture = `{"kind":"run","what":"mode","text":"quick"}
{"kind":"machine","what":"CPU model","text":"Test CPU | 9000"}
{"kind":"ratio","table":"vault","what":"Seal, 64 B","ours_label":"vault.Unlocked.Seal","ours":150,"reference_label":"AES-256-GCM","reference":120,"unit":"ns/op","lower_is_better":true}
{"kind":"ratio","table":"session","what":"logged in","ours_label":"keyhold","ours":51201,"reference_label":"scs","reference":26223,"unit":"req/s","lower_is_better":false,"note":"wrk"}
{"kind":"point","table":"sessions","series":"memstore GetSession","x":1000,"x_label":"sessions stored","y":1.5,"y_label":"µs per call","plot":"session-growth"}
{"kind":"point","table":"sessions","series":"memstore GetSession","x":1000000,"x_label":"sessions stored","y":2.25,"y_label":"µs per call","plot":"session-growth"}
{"kind":"fact","table":"cluster","what":"share of all keys on the fullest master","value":34.5,"unit":"%"}
{"kind":"section","table":"kdf","status":"failed","seconds":3,"note":"exit status 1; argon2 not found"}
{"kind":"section","table":"cluster","status":"not measured","seconds":0,"note":"internal/rediscluster is not in this tree"}
{"kind":"section","table":"vault","status":"ok","seconds":12}
{"kind":"ratio","table":"unlock","what":"after the KDF","ours_label":"rest","ours":0.0034,"reference_label":"KDF","reference":48.8,"unit":"ms","lower_is_better":true}
{"kind":"fact","table":"kdfmem","what":"calls that succeeded","value":10,"unit":"calls"}
not json
{"kind":"ratio","table":"vault","what":"no reference","ours":1}
`

func TestRender(t *testing.T) {
	d := parse(strings.NewReader(fixture))
	if len(d.bad) != 2 {
		t.Errorf("bad lines = %q, want the two broken ones", d.bad)
	}
	p := &plotter{}
	p.makePlots(d) // no gnuplot: every plot is reported as not made
	md := render(d, p)
	for _, want := range []string{
		"**Quick mode run",
		"| CPU model | Test CPU \\| 9000 |",
		"| Seal, 64 B | vault.Unlocked.Seal | AES-256-GCM | 150 ns/op | 120 ns/op | **1.25** |  |",
		"| logged in | keyhold | scs | 51,201 req/s | 26,223 req/s | **1.95** | wrk |",
		"Plot `session-growth` not made: gnuplot not found",
		"| 1,000,000 | 2.25 |",
		"| share of all keys on the fullest master | 34.5 % |  |",
		"| calls that succeeded | 10 calls |  |",
		"| 0.00340 ms | 48.8 ms | **0.0000697** |",
		"**Sections that failed in this run: kdf.**",
		"> **This section failed in this run.** exit status 1; argon2 not found",
		"> **Not measured in this run:** internal/rediscluster is not in this tree",
		"Lines of the results that could not be read (left out): 2.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("document lacks %q\n%s", want, md)
		}
	}
	// Known sections come in their fixed order, whatever the order of the lines.
	order := []string{"## Password hashing", "## Memory of concurrent", "## Vault records", "## Session middleware", "## Growth: sessions stored", "## Growth: users per cluster node"}
	last := -1
	for _, h := range order {
		i := strings.Index(md, h)
		if i < 0 || i < last {
			t.Errorf("heading %q at %d, after %d", h, i, last)
		}
		last = i
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 64: "64", 1.234: "1.23", 0.01234: "0.0123", 12.34: "12.3", 999.4: "999", 1234.5: "1,235", 1234567: "1,234,567", -2500: "-2,500"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
