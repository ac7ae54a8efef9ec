package sqlstore

import "time"

// SetClock makes st compare expiry times with now instead of time.Now. Call
// it before st is used.
func SetClock(st *Store, now func() time.Time) { st.now = now }

// SweepBatch is the most expired rows of each table that one sweep removes.
const SweepBatch = sweepBatch
