package storagetest_test

import (
	"testing"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/memstore"
	"github.com/keyhold/keyhold/storage/storagetest"
)

// An adapter's test file runs the whole conformance suite with one call,
// giving each subtest a fresh, empty store. (A suite needs a *testing.T, so
// this example is compiled but not run; the same call runs in
// storage/memstore's and storage/sqlstore's tests.)
func ExampleRun() {
	var t *testing.T // in a real test: func TestConformance(t *testing.T)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return memstore.New() // open your adapter on a fresh schema or key prefix
	})
}
