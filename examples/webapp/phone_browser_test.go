package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyhold/keyhold/internal/browsertest"
)

// phoneWalk signs up, then opens every page the app links to (following
// the links of each page, breadth first, from a list of starting points),
// the error pages, and the logged-out pages, in a 390 px wide page, and
// reports for each whether the page scrolls sideways
// (document.documentElement.scrollWidth > innerWidth) and, if it does,
// the elements that stick out.
const phoneWalk = `
const o = arg.origin;
const out = { pages: [], signedUp: false };
const wide = () => page.evaluate(() => {
  const w = window.innerWidth;
  const culprits = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 0.5 && culprits.length < 5) {
      culprits.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') + ' right=' + Math.round(r.right));
    }
  }
  return { scrollWidth: document.documentElement.scrollWidth, innerWidth: w, culprits };
});
const check = async (name, status) => {
  const m = await wide();
  out.pages.push({ name, url: page.url(), status, ...m });
};
const visit = async (path) => {
  const resp = await page.goto(o + path);
  const ct = resp ? (resp.headers()['content-type'] || '') : '';
  if (!ct.startsWith('text/html')) return false;
  await check(path, resp.status());
  return true;
};

if (arg.step === 'signup') {
  await page.goto(o + '/signup');
  await page.fill('input[name=username]', arg.username);
  await page.fill('input[name=password]', arg.password);
  await Promise.all([page.waitForURL('**/recovery-keys'), page.click('main button')]);
  await check('/recovery-keys (keys shown)', 200);
  await Promise.all([page.waitForURL('**/notes'), page.click('text=I have saved them')]);
  out.signedUp = true;
  return out;
}

// Every page the app links to, from these.
const seen = new Set();
const queue = ['/notes', '/private-notes', '/devices', '/2fa', '/2fa/enroll', '/passkeys', '/passkeys/add', '/account', '/reauth', '/recovery-keys'];
while (queue.length && seen.size < 40) {
  const path = queue.shift();
  if (seen.has(path)) continue;
  seen.add(path);
  if (!(await visit(path))) continue;
  const links = await page.$$eval('a[href^="/"]', (as) => as.map((a) => a.getAttribute('href')));
  for (const l of links) {
    const p = l.split('#')[0];
    if (p && !p.startsWith('/static/') && p !== '/2fa/qr' && !seen.has(p)) queue.push(p);
  }
}
// Details opened: the full User-Agent strings.
await visit('/devices');
for (const d of await page.$$('details')) await d.evaluate((e) => { e.open = true; });
await check('/devices (details open)', 200);
// The tables at other widths: between a phone and a wide desktop they
// are cards or a table, never wider than the window.
for (const path of ['/devices', '/2fa']) {
  await visit(path);
  for (const w of [320, 641, 768, 880, 1280]) {
    await page.setViewportSize({ width: w, height: 844 });
    await check(path + ' @' + w, 200);
  }
  await page.setViewportSize({ width: 390, height: 844 });
}

// Error pages: 404, 405, 413, 400, 403.
await visit('/no/such/page');
await visit('/logout');
await page.goto(o + '/notes');
await page.evaluate(() => { document.querySelector('form.new-note textarea').value = 'y'.repeat(1100000); });
await page.fill('form.new-note input[name=title]', 'big');
let [resp] = await Promise.all([page.waitForNavigation(), page.click('form.new-note button')]);
await check('POST /notes over the size limit', resp && resp.status());
await page.goto(o + '/notes');
await page.evaluate(() => document.querySelector('form.new-note').setAttribute('action', '/notes?x=%zz'));
await page.fill('form.new-note input[name=title]', 'bad');
[resp] = await Promise.all([page.waitForNavigation(), page.click('form.new-note button')]);
await check('POST /notes with a query that does not parse', resp && resp.status());
await page.goto('about:blank');
await page.setContent('<form method="post" action="' + o + '/lock"><button>go</button></form>');
[resp] = await Promise.all([page.waitForNavigation(), page.click('button')]);
await check('POST /lock from another site', resp && resp.status());

// Locked, then logged out.
await page.goto(o + '/notes');
await Promise.all([page.waitForURL('**/unlock'), page.click('header button:has-text("Lock")')]);
await check('/unlock', 200);
await Promise.all([page.waitForURL(o + '/'), page.click('header button:has-text("Log out")')]);
for (const p of ['/', '/login', '/signup', '/login?ended=1', '/?deleted=1']) await visit(p);
return out;
`

// TestPagesFitAPhone (issue 15): no page of the app scrolls sideways in a
// 390 px wide browser: the pages it links to (found by following its
// links, so new pages are covered as they are linked), with a second
// device whose User-Agent is long and a note whose title and body have
// long words; the error pages (404, 405, 413, 400, 403); the unlock page;
// the logged-out pages; and the pages with tables at widths from 320 to
// 1280 px. Skipped without chromium and playwright-core, failed without
// them in CI.
func TestPagesFitAPhone(t *testing.T) {
	t.Parallel() // its own app, database, browser and port
	s := browsertest.Start(t, browsertest.Options{Viewport: &browsertest.Viewport{Width: 390, Height: 844}, Timeout: 60 * time.Second})
	origin, _, logs := browserApp(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	start := time.Now()
	arg := map[string]any{"origin": origin, "username": "ada_lovelace_with_a_long_name", "password": password, "step": "signup"}
	var pages []phonePage
	run := func() {
		t.Helper()
		raw, err := s.Eval(ctx, phoneWalk, arg)
		if err != nil {
			t.Fatalf("%v\napp log:\n%s", err, logs)
		}
		var got struct{ Pages []phonePage }
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, got.Pages...)
	}
	run()

	// Two more devices (one with a long User-Agent without a space), and a
	// note with long words, from outside the browser.
	for _, ua := range []string{iPhoneUA, "Mozilla/5.0(" + strings.Repeat("X", 240) + ")"} {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		form := url.Values{"username": {arg["username"].(string)}, "password": {password}}
		req, err := http.NewRequestWithContext(ctx, "POST", origin+"/login", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", ua)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasSuffix(resp.Request.URL.Path, "/notes") {
			t.Fatalf("login of a second device: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		note := url.Values{"title": {strings.Repeat("Supercalifragilistic", 10)}, "body": {strings.Repeat("x", 300)}}
		resp, err = c.PostForm(origin+"/notes", note)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	arg["step"] = "walk"
	run()
	t.Logf("%d pages at 390 px in %v", len(pages), time.Since(start).Round(time.Millisecond))
	want := map[string]bool{"/devices": false, "/notes": false, "/2fa": false, "/account": false, "/no/such/page": false,
		"/logout": false, "/login": false, "/private-notes": false}
	statuses := map[int]bool{}
	for _, p := range pages {
		if _, ok := want[p.Name]; ok {
			want[p.Name] = true
		}
		statuses[p.Status] = true
		if p.ScrollWidth > p.InnerWidth {
			t.Errorf("%s (%s, %d) scrolls sideways at %d px: %d px wide; sticking out: %v", p.Name, p.URL, p.Status, p.InnerWidth, p.ScrollWidth, p.Culprits)
		}
		if p.InnerWidth != 390 && !strings.Contains(p.Name, " @") {
			t.Errorf("%s: the page is %d px wide, not 390", p.Name, p.InnerWidth)
		}
		if p.Status >= 500 {
			t.Errorf("%s: status %d", p.Name, p.Status)
		}
	}
	for name, ok := range want {
		if !ok {
			t.Errorf("%s not visited", name)
		}
	}
	for _, code := range []int{200, 400, 403, 404, 405, 413} {
		if !statuses[code] {
			t.Errorf("no page of status %d seen", code)
		}
	}
	for _, m := range s.Console() {
		if m.Level == "pageerror" || m.Level == "http" {
			t.Errorf("browser: %s", m)
		}
	}
	if t.Failed() {
		t.Logf("pages: %+v\napp log:\n%s", pages, logs)
	}
}

// phonePage is one page the phone walk looked at.
type phonePage struct {
	Name, URL               string
	Status                  int
	ScrollWidth, InnerWidth int
	Culprits                []string
}
