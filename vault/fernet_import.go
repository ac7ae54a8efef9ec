package vault

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/keyhold/keyhold/kdf"
)

// Parameters of the passphrase-derived Fernet key in the credentials files
// ImportFernetCredentials reads (FORMAT.md §3.5).
const (
	fernetImportIterations = 480_000
	fernetImportSaltLen    = 16
	fernetImportVersion    = "1.0"
)

// MaxFernetCredentialsLen is the largest credentials file, in bytes, that
// [Vault.ImportFernetCredentials] reads; a real one is under 2 KiB.
const MaxFernetCredentialsLen = 64 << 10

// FernetImportContextPrefix starts the context under which
// [Vault.ImportFernetCredentials] seals each imported credential: the
// context is this prefix followed by the credential's name, for example
// "keyhold/import/fernet-credentials/password".
const FernetImportContextPrefix = "keyhold/import/fernet-credentials/"

// fernetCredentialNames are the credentials of a file, in the order
// ImportFernetCredentials returns them.
var fernetCredentialNames = [...]string{"email", "password", "mfa_secret"}

// ImportedCredential is one credential of an imported file, re-sealed
// under the new vault.
type ImportedCredential struct {
	// Name is the credential's field in the file: "email", "password" or
	// "mfa_secret".
	Name string
	// Context is FernetImportContextPrefix followed by Name: pass it to
	// [Unlocked.Open] with Sealed.
	Context []byte
	// Sealed is the output of [Unlocked.Seal] for the credential's value
	// and Context. An empty value (no MFA secret, say) is sealed too.
	Sealed []byte
}

// fernetCredentialsFile is the JSON object of a credentials file. Pointers
// tell a missing member from an empty one.
type fernetCredentialsFile struct {
	Encrypted *bool   `json:"encrypted"`
	Version   *string `json:"version"`
	Salt      *string `json:"salt"`
	Email     *string `json:"email"`
	Password  *string `json:"password"`
	MFASecret *string `json:"mfa_secret"`
}

// ImportFernetCredentials moves a user off a passphrase-encrypted Fernet
// credentials file (the JSON layout of FORMAT.md §3.5, as written by
// Python applications that derive a Fernet key with PBKDF2-HMAC-SHA256 at
// 480,000 iterations from the passphrase and a 16-byte salt): it reads
// file (at most [MaxFernetCredentialsLen] bytes), derives the old key from
// passphrase, verifies and decrypts every credential, creates a vault for
// userID with the same passphrase ([Vault.Create]), and returns that vault
// unlocked together with each credential ("email", "password",
// "mfa_secret", in that order) re-sealed with [Unlocked.Seal]. The
// library stores none of them: the caller stores the sealed credentials,
// then deletes the old file.
//
// Errors:
//   - a file that is not such a JSON object (not encrypted, another
//     version, a salt other than 16 bytes, no credential to check the
//     passphrase against, oversized) matches [ErrInvalidInput];
//   - a wrong passphrase, and equally a tampered or truncated credential,
//     is [ErrUnlockFailed]: the two cannot be told apart, by design;
//   - [ErrExists] if the user has a vault already (checked before the
//     key derivation, and again by Create);
//   - a passphrase over kdf.DefaultMaxPasswordBytes matches kdf.ErrTooLong,
//     and a full KDF gate kdf.ErrBusy.
//
// The key derivation waits at the Vault's kdf Gate. Count failures against
// the account's limiter, as for [Vault.Unlock]. Fernet timestamps carry no
// expiry here (the files have none), but one more than 60 seconds in the
// future is refused. The passphrase is used as given (its UTF-8 bytes, as
// Python encodes it); Create applies the kdf's NFKC normalisation to the
// new vault's slot, so later unlocks behave as for any vault.
func (v *Vault) ImportFernetCredentials(ctx context.Context, userID string, passphrase []byte, file io.Reader) (*Unlocked, []ImportedCredential, error) {
	if v == nil {
		return nil, nil, errNilVault
	}
	if err := checkUserID(userID); err != nil {
		return nil, nil, err
	}
	if len(passphrase) > kdf.DefaultMaxPasswordBytes {
		return nil, nil, fmt.Errorf("vault: passphrase: %w", kdf.ErrTooLong)
	}
	salt, tokens, err := parseFernetCredentials(file)
	if err != nil {
		return nil, nil, err
	}
	switch _, _, err := v.load(ctx, userID); {
	case err == nil:
		return nil, nil, ErrExists
	case !errors.Is(err, ErrNoVault):
		return nil, nil, err
	}

	var key []byte
	var kerr error
	err = v.hasher.Gate().Run(ctx, 1, func() {
		key, kerr = pbkdf2.Key(sha256.New, string(passphrase), salt, fernetImportIterations, len(fernet.Key{}))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("vault: deriving key: %w", err)
	}
	if kerr != nil {
		return nil, nil, fmt.Errorf("vault: deriving key: %w", kerr)
	}
	k := new(fernet.Key)
	copy(k[:], key)
	clear(key)
	values, err := openFernetCredentials(k, tokens, time.Now())
	clear(k[:])
	defer func() {
		for _, b := range values {
			clear(b)
		}
	}()
	if err != nil {
		return nil, nil, err
	}

	u, err := v.Create(ctx, userID, passphrase)
	if err != nil {
		return nil, nil, err
	}
	creds := make([]ImportedCredential, len(fernetCredentialNames))
	for i, name := range fernetCredentialNames {
		c := []byte(FernetImportContextPrefix + name)
		sealed, err := u.Seal(values[i], c)
		if err != nil {
			u.Lock()
			return nil, nil, err
		}
		creds[i] = ImportedCredential{Name: name, Context: c, Sealed: sealed}
	}
	return u, creds, nil
}

// parseFernetCredentials reads and checks the file's structure; it returns
// the salt and the three tokens (email, password, MFA secret), "" where
// the file holds an empty value. Every failure matches ErrInvalidInput.
func parseFernetCredentials(file io.Reader) ([]byte, [len(fernetCredentialNames)]string, error) {
	var tokens [len(fernetCredentialNames)]string
	if file == nil {
		return nil, tokens, fmt.Errorf("%w: nil credentials file", ErrInvalidInput)
	}
	data, err := io.ReadAll(io.LimitReader(file, MaxFernetCredentialsLen+1))
	if err != nil {
		return nil, tokens, fmt.Errorf("vault: reading credentials file: %w", err)
	}
	if len(data) > MaxFernetCredentialsLen {
		return nil, tokens, fmt.Errorf("%w: credentials file over %d bytes", ErrInvalidInput, MaxFernetCredentialsLen)
	}
	var f fernetCredentialsFile
	if err := json.Unmarshal(data, &f); err != nil {
		// The JSON error may quote the file; say only that it is not JSON.
		return nil, tokens, fmt.Errorf("%w: credentials file is not a JSON object of the expected types", ErrInvalidInput)
	}
	switch {
	case f.Encrypted == nil || !*f.Encrypted:
		return nil, tokens, fmt.Errorf("%w: credentials file is not marked encrypted", ErrInvalidInput)
	case f.Version == nil || *f.Version != fernetImportVersion:
		return nil, tokens, fmt.Errorf("%w: credentials file version is not %s", ErrInvalidInput, fernetImportVersion)
	case f.Salt == nil:
		return nil, tokens, fmt.Errorf("%w: credentials file has no salt", ErrInvalidInput)
	case f.Email == nil || f.Password == nil:
		return nil, tokens, fmt.Errorf("%w: credentials file lacks email or password", ErrInvalidInput)
	}
	salt, err := base64.StdEncoding.Strict().DecodeString(*f.Salt)
	if err != nil || len(salt) != fernetImportSaltLen {
		return nil, tokens, fmt.Errorf("%w: credentials file salt is not %d bytes in base64", ErrInvalidInput, fernetImportSaltLen)
	}
	tokens[0], tokens[1] = *f.Email, *f.Password
	if f.MFASecret != nil {
		tokens[2] = *f.MFASecret
	}
	if tokens == [len(tokens)]string{} {
		return nil, tokens, fmt.Errorf("%w: credentials file holds no encrypted credential", ErrInvalidInput)
	}
	return salt, tokens, nil
}

// openFernetCredentials opens every non-empty token with no TTL; any
// failure is ErrUnlockFailed and wipes what was opened.
func openFernetCredentials(k *fernet.Key, tokens [len(fernetCredentialNames)]string, now time.Time) ([][]byte, error) {
	values := make([][]byte, len(tokens))
	for i, tok := range tokens {
		if tok == "" {
			values[i] = []byte{}
			continue
		}
		pt, err := openFernetAt(k, []byte(tok), FernetNoTTL, now)
		if err != nil {
			for _, b := range values {
				clear(b)
			}
			return nil, ErrUnlockFailed
		}
		values[i] = pt
	}
	return values, nil
}
