package redisstore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
)

// Keep sessions in Redis, list a user's sessions and sign the user out
// everywhere. Package session does this through the storage.SessionStore
// interface; the calls are shown here directly.
//
// This example needs a Redis server at 127.0.0.1:6379, so it has no Output
// comment: go test compiles it but does not run it. The tests run the same
// calls against the server named by KEYHOLD_TEST_REDIS_URL.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // a context's deadline ends a call on the wire
	})
	defer rdb.Close() // the Store never closes the client

	st, err := redisstore.New(rdb, redisstore.Config{}) // keys start with "keyhold:"
	if err != nil {
		log.Fatal(err)
	}

	// The store sees only the SHA-256 of a token, never the token.
	id := sha256.Sum256([]byte("session token"))
	err = st.PutSession(ctx, storage.Session{
		ID:      id[:],
		UserID:  "alice",
		Expires: time.Now().Add(12 * time.Hour), // Redis forgets it then (PXAT)
		Data:    []byte("sealed by package session"),
	}, 0) // 0: a new session; a later write expects the version it read
	if err != nil {
		log.Fatal(err)
	}

	s, err := st.GetSession(ctx, id[:]) // one GET
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("session of", s.UserID)

	all, err := st.ListUserSessions(ctx, "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice has", len(all), "session(s)")

	// Sign alice out everywhere: one script deletes every session in her
	// index, and the index.
	if err := st.DeleteUserSessions(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
}

// On a Redis Cluster, the Store sets its keys' hash tags itself (a user's
// sessions, families and indexes share one slot, the rest spread by their
// own key), so the prefix needs none, and may hold no brace. New checks
// that without connecting, so this example runs without a server.
func ExampleNew_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
	})
	defer rdb.Close()

	_, err := redisstore.New(rdb, redisstore.Config{}) // "keyhold:"
	fmt.Println("default prefix:", err)

	_, err = redisstore.New(rdb, redisstore.Config{Prefix: "{keyhold}:"})
	fmt.Println(err)

	// Output:
	// default prefix: <nil>
	// redisstore: the prefix holds "{" or "}": the Store sets its keys' hash tags itself (a prefix with a hash tag, as "{keyhold}:" was, is no longer needed on a cluster)
}
