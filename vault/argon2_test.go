package vault

import (
	"github.com/keyhold/keyhold/kdf"
	"golang.org/x/crypto/argon2"
)

// rawArgon2id is what a login hash with this salt and these parameters
// stores, for comparison with a derived KEK.
func rawArgon2id(password, salt []byte, p kdf.Params) ([]byte, error) {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, 32), nil
}
