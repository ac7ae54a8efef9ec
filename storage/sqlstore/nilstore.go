package sqlstore

import (
	"fmt"

	"github.com/keyhold/keyhold/storage"
)

// errNilStore is what every method of a nil *Store returns (what a failed
// constructor leaves behind): an error matching storage.ErrInvalid, never a
// panic. Methods without an error result return zero values.
var errNilStore = fmt.Errorf("%w: nil *Store", storage.ErrInvalid)
