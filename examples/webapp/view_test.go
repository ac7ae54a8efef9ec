package main

import (
	"bytes"
	"html/template"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyhold/keyhold/session"
)

// TestDescribeUA: the devices page's short description of a User-Agent,
// for real browsers' strings, scripts, and garbage (never a panic, never
// the string's own text, bounded work on 10 KB).
func TestDescribeUA(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ua, want string }{
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPhone"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari on iPad"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome on iPhone"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", "Firefox on iPhone"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Safari on iPhone"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", "Opera on Windows"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
		{"Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "Internet Explorer on Windows"},
		{"curl/8.5.0", "curl"},
		{"Go-http-client/1.1", "a Go program"},
		{"python-requests/2.32.3", "a Python script"},
		{"Mozilla/5.0 (X11; Linux x86_64)", "A browser on Linux"},
		{"", "Unknown browser"},
		{"<script>alert(1)</script>", "Unknown browser"},
		{"\x00\xff\xfe garbage \u202e", "Unknown browser"},
		{strings.Repeat("Z", 10<<10), "Unknown browser"},
		// A token past the bound is not read: the work is bounded.
		{strings.Repeat(" ", maxUALen) + "Firefox/1 (Windows)", "Unknown browser"},
	} {
		if got := describeUA(tc.ua); got != tc.want {
			t.Errorf("describeUA(%.60q) = %q, want %q", tc.ua, got, tc.want)
		}
	}
	// Random bytes: never a panic, and the answer is made of the fixed
	// words only.
	words := map[string]bool{"Unknown browser": true}
	for _, b := range uaBrowsers {
		words[b.name] = true
		for _, s := range uaSystems {
			words[b.name+" on "+s.name] = true
		}
	}
	for _, s := range uaSystems {
		words["A browser on "+s.name] = true
	}
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := []string{"Chrome/", "Safari/", "Version/", "iPhone", "Linux", "Edg/", "\xff", " ", "Mobile/", "AppleWebKit/"}
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(40) {
			if rng.IntN(2) == 0 {
				b.WriteString(tokens[rng.IntN(len(tokens))])
			} else {
				b.WriteByte(byte(rng.IntN(256)))
			}
		}
		if got := describeUA(b.String()); !words[got] {
			t.Fatalf("describeUA(%q) = %q: not one of the fixed descriptions", b.String(), got)
		}
	}
}

// TestCleanUA: the full User-Agent as the details show it: valid UTF-8,
// no control or format characters (a right-to-left override would turn
// the text around), bounded.
func TestCleanUA(t *testing.T) {
	t.Parallel()
	for _, ua := range []string{"", "curl/8", "a\x00b\x1bc\u0085d\u202ee", "\xff\xfe", strings.Repeat("é", 10<<10), strings.Repeat("x", 10<<10)} {
		got := cleanUA(ua)
		if !utf8.ValidString(got) || len(got) > maxUALen*3 {
			t.Errorf("cleanUA(%.40q) = %.40q: invalid or too long (%d bytes)", ua, got, len(got))
		}
		if strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' }) {
			t.Errorf("cleanUA(%.40q) = %q: control characters left", ua, got)
		}
	}
	if got := cleanUA("curl/8.5.0"); got != "curl/8.5.0" {
		t.Errorf("cleanUA changed a plain string: %q", got)
	}
}

// TestTimeFuncs: times in UTC with the zone written out, whatever the
// zone of the time.Time; the zero time is "never"; the <time> element
// carries the RFC 3339 time.
func TestTimeFuncs(t *testing.T) {
	t.Parallel()
	tokyo := time.FixedZone("JST", 9*3600)
	at := time.Date(2026, 12, 7, 23, 5, 9, 0, tokyo) // 14:05:09 UTC
	for _, tc := range []struct{ got, want string }{
		{when(at), "7 Dec 2026, 14:05 UTC"},
		{when(at.UTC()), "7 Dec 2026, 14:05 UTC"},
		{when(time.Time{}), "never"},
		{timeOfDay(at), "14:05 UTC"},
		{timeOfDay(time.Time{}), ""},
		{isoTime(at), "2026-12-07T14:05:09Z"},
		{isoTime(time.Time{}), ""},
		{string(timeTag(at)), `<time datetime="2026-12-07T14:05:09Z">7 Dec 2026, 14:05 UTC</time>`},
		{string(timeTag(time.Time{})), "never"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// Through a template, as the pages call them.
	tmpl := template.Must(template.New("t").Funcs(templateFuncs).Parse(`{{timeTag .}}|{{when .}}|{{clock .}}|<time datetime="{{isoTime .}}">`))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, at); err != nil {
		t.Fatal(err)
	}
	if want := `<time datetime="2026-12-07T14:05:09Z">7 Dec 2026, 14:05 UTC</time>|7 Dec 2026, 14:05 UTC|14:05 UTC|<time datetime="2026-12-07T14:05:09Z">`; buf.String() != want {
		t.Errorf("template: %s\nwant      %s", buf.String(), want)
	}
}

// TestSortDevices: this device first, then by login time, the latest
// first, ties by reference; the last request does not move a row.
func TestSortDevices(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	list := []session.Device{
		{Ref: "d", Created: t0.Add(1 * time.Hour), LastSeen: t0.Add(5 * time.Hour)},
		{Ref: "b", Created: t0.Add(2 * time.Hour), LastSeen: t0.Add(2 * time.Hour)},
		{Ref: "self", Created: t0, LastSeen: t0.Add(3 * time.Hour), Current: true},
		{Ref: "c", Created: t0.Add(2 * time.Hour), LastSeen: t0.Add(9 * time.Hour)},
		{Ref: "a", Created: t0.Add(2 * time.Hour), LastSeen: t0.Add(1 * time.Hour)},
	}
	want := "self a b c d"
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		sortDevices(list)
		var refs []string
		for _, d := range list {
			refs = append(refs, d.Ref)
		}
		if got := strings.Join(refs, " "); got != want {
			t.Fatalf("order %q, want %q", got, want)
		}
	}
}

// TestDevicesPageRows: the devices template's rows, from made-up
// devices: the short description with the full string escaped in the
// details, an API client, a login waiting for its second factor (with
// its warning), times with the zone, and "Log out everywhere else" only
// when there is another device.
func TestDevicesPageRows(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 14, 5, 0, 0, time.UTC)
	render := func(list []session.Device) string {
		t.Helper()
		var buf bytes.Buffer
		if err := pages["devices"].ExecuteTemplate(&buf, "layout", pageData{User: "ada", Devices: list}); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	evil := `<script>alert(1)</script> Chrome/1 "quoted" ` + "\u202e"
	page := render([]session.Device{
		{Ref: "r1", Created: at, LastSeen: at, UserAgent: iPhoneUA, Current: true, Unlocked: true},
		{Ref: "r2", Created: at, LastSeen: at, UserAgent: evil, SecondFactorPending: true},
		{Ref: "r3", Created: at, LastSeen: at, Bearer: true, UserAgent: "Go-http-client/1.1"},
	})
	rows := strings.Split(page, "<tr>")[2:] // after the header row
	if len(rows) != 3 {
		t.Fatalf("%d rows:\n%s", len(rows), page)
	}
	for i, want := range []string{"Safari on iPhone", "Chrome", "An app using the API"} {
		if !strings.Contains(rows[i], "<strong>"+want+"</strong>") {
			t.Errorf("row %d does not say %q:\n%s", i, want, rows[i])
		}
		if !strings.Contains(rows[i], `<time datetime="2026-12-07T14:05:00Z">7 Dec 2026, 14:05 UTC</time>`) {
			t.Errorf("row %d: no time with its zone:\n%s", i, rows[i])
		}
	}
	if !strings.Contains(rows[0], "(this device)") || strings.Contains(rows[1], "(this device)") {
		t.Errorf("this device not marked on the first row only")
	}
	if !strings.Contains(rows[1], "Waiting for its second factor") || strings.Contains(rows[0], "Waiting") {
		t.Errorf("the pending login's warning:\n%s", rows[1])
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "\u202e") || !strings.Contains(rows[1], "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the User-Agent is not escaped and cleaned:\n%s", rows[1])
	}
	if !strings.Contains(page, `action="/devices/revoke-others"`) {
		t.Errorf("no \"Log out everywhere else\" with three devices")
	}
	if one := render([]session.Device{{Ref: "r1", Created: at, LastSeen: at, Current: true}}); strings.Contains(one, `action="/devices/revoke-others"`) {
		t.Errorf("\"Log out everywhere else\" with one device")
	}
}
