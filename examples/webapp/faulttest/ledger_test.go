package faulttest

import (
	"errors"
	"testing"
)

func TestParseNotes(t *testing.T) {
	page := `<h1>Notes</h1>
<form method="post" action="/notes" class="new-note"></form>
<article class="note">
  <h2>a &amp; b</h2>
  <p class="meta"><time>x</time></p>
  <p class="body">owner=ana &lt;1&gt;</p>
  <details><summary>Edit</summary></details>
</article>
<article class="note">
  <h2>(unreadable)</h2>
  <p class="meta"><time>x</time></p>
  <p class="body"></p>
</article>`
	notes, err := ParseNotes(page)
	if err != nil {
		t.Fatal(err)
	}
	want := []Note{{"a & b", "owner=ana <1>"}, {"(unreadable)", ""}}
	if len(notes) != len(want) || notes[0] != want[0] || notes[1] != want[1] {
		t.Fatalf("got %q, want %q", notes, want)
	}
	if notes, err := ParseNotes("<h1>Notes</h1>\n<p>No notes yet.</p>"); err != nil || len(notes) != 0 {
		t.Fatalf("empty page: %q, %v", notes, err)
	}
	for name, bad := range map[string]string{
		"not the notes page": `<h1>Sorry</h1>`,
		"no end":             `<h1>Notes</h1><article class="note"><h2>x</h2><p class="body">y</p>`,
		"no body":            `<h1>Notes</h1><article class="note"><h2>x</h2></article>`,
	} {
		if _, err := ParseNotes(bad); !errors.Is(err, ErrPage) {
			t.Errorf("%s: got %v, want ErrPage", name, err)
		}
	}
}

func TestLedgerCheck(t *testing.T) {
	l := NewLedger()
	l.Attempt("ana", "t1", "b1")
	l.Ack("ana", "t1")
	l.Attempt("ana", "t2", "b2") // never acknowledged: optional
	want := l.Acked("ana")
	l.Ack("ana", "t2") // acknowledged after the read began: not required by it

	for _, tc := range []struct {
		name  string
		notes []Note
		is    []error
	}{
		{"all", []Note{{"t1", "b1"}, {"t2", "b2"}}, nil},
		{"unacknowledged one absent", []Note{{"t1", "b1"}}, nil},
		{"lost", []Note{{"t2", "b2"}}, []error{ErrLost}},
		{"never written", []Note{{"t1", "b1"}, {"t9", "b9"}}, []error{ErrForeign}},
		{"other body", []Note{{"t1", "owner=bob"}}, []error{ErrForeign}},
		{"twice", []Note{{"t1", "b1"}, {"t1", "b1"}}, []error{ErrDuplicate}},
		{"unreadable", []Note{{"(unreadable)", ""}}, []error{ErrForeign, ErrLost}},
	} {
		err := l.Check("ana", tc.notes, want)
		if tc.is == nil && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		for _, target := range tc.is {
			if !errors.Is(err, target) {
				t.Errorf("%s: got %v, want %v", tc.name, err, target)
			}
		}
	}
	if err := l.Check("bob", []Note{{"t1", "b1"}}, nil); !errors.Is(err, ErrForeign) {
		t.Errorf("ana's note in bob's read: got %v, want ErrForeign", err)
	}
	if a, k := l.Counts("ana"); a != 2 || k != 2 {
		t.Errorf("Counts: %d, %d", a, k)
	}
}
