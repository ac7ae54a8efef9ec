// Package faulttest runs the web app (examples/webapp) under load while
// its PostgreSQL and its Redis fail, and checks what users see: its test,
// TestServiceFaults, builds the app, starts a PostgreSQL and a Redis of
// its own on free loopback ports (never the machine's shared servers),
// signs users up, and restarts, crashes, stops and wipes the two servers
// while users read and write their notes and revoked sessions keep
// knocking. It runs in long mode only (KEYHOLD_LONG_TESTS=1).
//
// This file is the test's bookkeeping, which does not need the servers:
// a [Ledger] of the notes each user tried to write and those the app
// acknowledged, and [ParseNotes], which reads the app's notes page. A
// write whose answer never came, or came as an error, may or may not be
// stored; an acknowledged one must be there at every later read, and
// nothing may be there that the user never tried to write.
package faulttest

import (
	"errors"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Errors of [Ledger.Check] and [ParseNotes].
var (
	// ErrLost is an acknowledged note missing from a read.
	ErrLost = errors.New("faulttest: acknowledged note missing")
	// ErrForeign is a note the user never tried to write, or whose body
	// is not the one written (another user's, an unreadable one, a
	// changed one).
	ErrForeign = errors.New("faulttest: note not written by this user")
	// ErrDuplicate is a note shown twice.
	ErrDuplicate = errors.New("faulttest: note shown twice")
	// ErrPage is a notes page that does not read as one.
	ErrPage = errors.New("faulttest: not a notes page")
)

// A Note is a note as the notes page shows it.
type Note struct {
	Title, Body string
}

var (
	articleOpen = `<article class="note">`
	noteTitle   = regexp.MustCompile(`(?s)^\s*<h2>(.*?)</h2>`)
	noteBody    = regexp.MustCompile(`(?s)<p class="body">(.*?)</p>`)
)

// ParseNotes returns the notes of the web app's notes page
// (templates/notes.html: each in an <article class="note">, its title in
// the <h2>, its body in the <p class="body">), unescaped, in the page's
// order. It fails with ErrPage if the page has no notes list or an
// article it cannot read.
func ParseNotes(page string) ([]Note, error) {
	if !strings.Contains(page, "<h1>Notes</h1>") {
		return nil, fmt.Errorf("%w: no <h1>Notes</h1>", ErrPage)
	}
	parts := strings.Split(page, articleOpen)
	notes := make([]Note, 0, len(parts)-1)
	for i, part := range parts[1:] {
		part, _, ok := strings.Cut(part, "</article>")
		if !ok {
			return nil, fmt.Errorf("%w: note %d has no </article>", ErrPage, i)
		}
		t := noteTitle.FindStringSubmatch(part)
		b := noteBody.FindStringSubmatch(part)
		if t == nil || b == nil {
			return nil, fmt.Errorf("%w: note %d has no title or body", ErrPage, i)
		}
		notes = append(notes, Note{Title: html.UnescapeString(t[1]), Body: html.UnescapeString(b[1])})
	}
	return notes, nil
}

// A Ledger records, per user, the notes written (title and body) and
// those the app acknowledged. Titles are unique per user. It is safe for
// concurrent use; the zero value is not: use [NewLedger].
type Ledger struct {
	mu    sync.Mutex
	users map[string]*userLedger
}

type userLedger struct {
	attempted map[string]string // title → body
	acked     []string          // titles, in the order acknowledged
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger { return &Ledger{users: map[string]*userLedger{}} }

func (l *Ledger) user(name string) *userLedger {
	u := l.users[name]
	if u == nil {
		u = &userLedger{attempted: map[string]string{}}
		l.users[name] = u
	}
	return u
}

// Attempt records that user is about to write the note title with body,
// before the request is sent: from then on the note may be stored.
func (l *Ledger) Attempt(user, title, body string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.user(user).attempted[title] = body
}

// Ack records that the app acknowledged writing user's note title: every
// read from now on must show it.
func (l *Ledger) Ack(user, title string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(user)
	u.acked = append(u.acked, title)
}

// Acked returns the titles of user's acknowledged notes so far: take it
// before sending a read, and pass it to Check with the read's notes.
func (l *Ledger) Acked(user string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.user(user).acked)
}

// Counts returns how many notes user tried to write and how many the app
// acknowledged.
func (l *Ledger) Counts(user string) (attempted, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(user)
	return len(u.attempted), len(u.acked)
}

// Check compares the notes a read showed user with the ledger: every
// title in want (what [Ledger.Acked] returned before the read) must be
// there (ErrLost), and every note shown must be one that user tried to
// write, with the body written (ErrForeign), once (ErrDuplicate). It
// returns nil or every problem found, joined.
func (l *Ledger) Check(user string, notes []Note, want []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.user(user)
	var errs []error
	seen := make(map[string]bool, len(notes))
	for _, n := range notes {
		body, ok := u.attempted[n.Title]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: %s: %q (body %q)", ErrForeign, user, n.Title, n.Body))
		case body != n.Body:
			errs = append(errs, fmt.Errorf("%w: %s: %q has body %q, written %q", ErrForeign, user, n.Title, n.Body, body))
		case seen[n.Title]:
			errs = append(errs, fmt.Errorf("%w: %s: %q", ErrDuplicate, user, n.Title))
		}
		seen[n.Title] = true
	}
	for _, title := range want {
		if !seen[title] {
			errs = append(errs, fmt.Errorf("%w: %s: %q", ErrLost, user, title))
		}
	}
	return errors.Join(errs...)
}
