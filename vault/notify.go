package vault

import (
	"context"
	"time"

	"github.com/keyhold/keyhold"
	"github.com/keyhold/keyhold/internal/notify"
)

// notify tells the Config's Notifier of a change that has been stored. A
// panic in the hook is recovered and dropped: the change has happened, and
// vault logs nothing (see keyhold.Notifier).
func (v *Vault) notify(ctx context.Context, kind keyhold.EventKind, userID, detail string) {
	notify.Send(ctx, v.notifier, keyhold.Event{Kind: kind, UserID: userID, Time: time.Now(), Detail: detail})
}
