package keyhold

import (
	"context"
	"net/netip"
	"time"
)

// An EventKind names a security event that the account's owner should be
// told about (ASVS V6.3.7; NIST SP 800-63B §4.1.2.1, §4.2.3, §4.6): an
// email or a push message saying what happened, when, and what to do if it
// was not them.
type EventKind string

// The events keyhold sends to a [Notifier]. Each is sent once per
// occurrence, after the change it reports has been stored. Packages built
// later (passkeys) add their kinds here.
const (
	// PassphraseChanged: vault.Vault.ChangePassphrase replaced the
	// passphrase slot.
	PassphraseChanged EventKind = "passphrase_changed"
	// RecoveryKeyUsed: vault.Vault.UnlockWithRecoveryKey opened the vault
	// with a recovery key (and consumed it).
	RecoveryKeyUsed EventKind = "recovery_key_used"
	// RecoveryKeysRegenerated: vault.Vault.RegenerateRecoveryKeys replaced
	// every recovery key.
	RecoveryKeysRegenerated EventKind = "recovery_keys_regenerated"
	// MasterKeyRotated: vault.Vault.RotateMasterKey made a new master key
	// and replaced every recovery key.
	MasterKeyRotated EventKind = "master_key_rotated"
	// VaultReset: vault.Vault.ResetDestroyingData replaced an existing
	// vault (account recovery without a key: the old data is lost).
	VaultReset EventKind = "vault_reset"
	// KeySlotAdded: vault.Vault.AddWrapperSlot or AddSecretSlot added (or
	// replaced) a way in through an application key wrapper or a secret
	// (a passkey's PRF output); Detail is the wrapper's ID, or the secret
	// slot's ID (vault.SecretSlotID).
	KeySlotAdded EventKind = "key_slot_added"
	// KeySlotRemoved: vault.Vault.RemoveSlot removed a recovery, wrapper
	// or secret slot, or vault.Vault.RotateMasterKey dropped a secret slot
	// (it cannot re-wrap one without its secret); Detail is the slot's ID
	// (as vault.Vault.Slots lists it).
	KeySlotRemoved EventKind = "key_slot_removed"
	// NewDeviceLogin: ratelimit.Devices.RememberLogin found no device
	// cookie of the account on a successful login's request.
	NewDeviceLogin EventKind = "new_device_login"
	// AccountLocked: an attempt locked a ratelimit.Lockout counter of
	// the account; Detail is its scope ("source", "account" or "device")
	// and Until the end of the lock.
	AccountLocked EventKind = "account_locked"
	// PartialAuthentication: a login's password was right but its second
	// factor failed session.Config.MaxSecondFactorFailures times in a row
	// (session.Manager.SecondFactorFailed), and the pending login was
	// ended (TOT-13). Detail is the ended session's reference
	// (session.Info.Ref), which the audit log names too. If it was not
	// the user, their password is known to someone else: tell them to
	// change it.
	PartialAuthentication EventKind = "partial_authentication"
	// PasswordChanged is for the application to send through the same
	// Notifier: keyhold keeps no table of users, so a login password
	// change (or reset) is the application's own write.
	PasswordChanged EventKind = "password_changed"
	// SecondFactorEnabled: totp.Authenticator.Confirm added a TOTP
	// authenticator to the account (a first one, or another, or one
	// replacing an old one); Detail is its ID.
	SecondFactorEnabled EventKind = "second_factor_enabled"
	// SecondFactorRemoved: totp.Authenticator.Remove removed a TOTP
	// authenticator (or Confirm replaced it); Detail is its ID.
	SecondFactorRemoved EventKind = "second_factor_removed"
	// LoginRecoveryCodeUsed: a login recovery code (package totp) was
	// used up in place of the second factor; Detail is how many codes
	// are left.
	LoginRecoveryCodeUsed EventKind = "login_recovery_code_used"
	// LoginRecoveryCodesRegenerated: totp.Authenticator made a new set of
	// login recovery codes; the old ones no longer work.
	LoginRecoveryCodesRegenerated EventKind = "login_recovery_codes_regenerated"
	// PasskeyAdded: passkey.Manager.FinishRegistration registered a
	// passkey for the account; Detail is its name.
	PasskeyAdded EventKind = "passkey_added"
	// PasskeyRemoved: passkey.Manager.Remove removed a passkey (and its
	// vault slot); Detail is its name.
	PasskeyRemoved EventKind = "passkey_removed"
	// PasskeyCloneWarning: a passkey's signature counter did not grow
	// (a cloned authenticator, or a faulty one); Detail is the passkey's
	// name and whether the assertion was refused.
	PasskeyCloneWarning EventKind = "passkey_clone_warning"
)

// An Event is one security event. It never carries a secret: no
// password, passphrase, key, recovery key, token or hash.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// UserID is the account: the application's user ID (vault), or the
	// account name the application passed to ratelimit (which may name no
	// account: a lockout counts unknown names too; look it up, and do not
	// log it raw, since people type passwords into name fields).
	UserID string
	// Time is when it happened, by the clock of the package that sent it.
	Time time.Time
	// IP is the client's address when the sender knows it (ratelimit's
	// Source), else the zero Addr.
	IP netip.Addr
	// Until is the end of a lock (AccountLocked), else zero.
	Until time.Time
	// Detail says more, as each kind documents; never a secret.
	Detail string
}

// A Notifier is the hook an application sets (vault.Config.Notifier,
// ratelimit.LockoutOptions.Notifier, ratelimit.DeviceOptions.Notifier,
// session.Config.Notifier, totp.Config.Notifier,
// passkey.Config.Notifier) to
// hear about security events and tell the account's owner.
//
// Notify is called synchronously, once per event, after the change has
// been stored, on the goroutine of the operation: it must return quickly.
// Hand the event to a queue (a channel, an outbox table) and send the
// email from there; a slow Notify slows the login or change it reports.
// Its context carries the operation's values but not its cancellation
// (a client that hangs up does not cancel the notice), with a deadline of
// [NotifyTimeout]. Notify returns nothing: a notice that cannot be
// delivered never undoes or fails the operation, which has already
// happened, and a Notify that panics has its panic recovered for the same
// reason (ratelimit, session and totp log it as sys_notify_fail; vault,
// which logs nothing,
// drops it). Retries and errors are the Notifier's business.
type Notifier interface {
	// Notify hands e on to be told to the account's owner, as above.
	Notify(ctx context.Context, e Event)
}

// NotifierFunc adapts a function to a Notifier.
type NotifierFunc func(ctx context.Context, e Event)

// Notify calls f(ctx, e).
func (f NotifierFunc) Notify(ctx context.Context, e Event) { f(ctx, e) }

// NotifyTimeout is the deadline of the context Notify gets.
const NotifyTimeout = 5 * time.Second
