package faulttest_test

import (
	"errors"
	"fmt"

	"github.com/keyhold/keyhold/examples/webapp/faulttest"
)

// A write acknowledged must be in every later read; a write whose answer
// never came may be there or not; nothing else may be.
func ExampleLedger() {
	l := faulttest.NewLedger()
	l.Attempt("ana", "ana-1", "owner=ana 1")
	l.Ack("ana", "ana-1")
	l.Attempt("ana", "ana-2", "owner=ana 2") // the app's answer was lost

	page := `<h1>Notes</h1>
<article class="note">
  <h2>ana-2</h2>
  <p class="body">owner=ana 2</p>
</article>
<article class="note">
  <h2>bob-1</h2>
  <p class="body">owner=bob 1</p>
</article>`
	notes, err := faulttest.ParseNotes(page)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = l.Check("ana", notes, l.Acked("ana"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, faulttest.ErrLost), errors.Is(err, faulttest.ErrForeign))
	// Output:
	// faulttest: note not written by this user: ana: "bob-1" (body "owner=bob 1")
	// faulttest: acknowledged note missing: ana: "ana-1"
	// true true
}
