// Package notify calls an application's keyhold.Notifier the one way
// every package does: once, after the change, with a context that the
// client cannot cancel and a deadline, and never letting a panic in the
// hook reach the operation (which has already happened).
package notify

import (
	"context"
	"fmt"

	"github.com/keyhold/keyhold"
)

// Send calls n.Notify(ctx, e) if n is set. It returns the type of the
// value a panicking Notify panicked with (never the value, which may hold
// anything), or "" when Notify returned.
func Send(ctx context.Context, n keyhold.Notifier, e keyhold.Event) (panicked string) {
	if n == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyhold.NotifyTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			panicked = fmt.Sprintf("%T", v)
		}
	}()
	n.Notify(ctx, e)
	return ""
}
