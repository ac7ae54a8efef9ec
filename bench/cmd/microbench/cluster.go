package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyhold/keyhold/internal/rediscluster"
	"github.com/keyhold/keyhold/storage"
	"github.com/keyhold/keyhold/storage/redisstore"
)

// benchCluster starts a 3-master Redis Cluster of its own, stores one
// session per user through redisstore on a cluster client, and reports
// the keys each master holds as the users grow, then times GetSession
// against a plain GET on the same cluster. The cluster (processes and
// directory) is removed before it returns.
func benchCluster(ctx context.Context, em *emitter) error {
	top := *maxUsers
	if top == 0 {
		top = 100_000
		if *quick {
			top = 1000
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	c, err := rediscluster.StartCluster(startCtx, *dir, 3, 0)
	if err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			log.Printf("cluster: closing: %v", err)
		}
	}()
	log.Printf("cluster: 3 masters ready in %.1fs", time.Since(t0).Seconds())
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), PoolSize: 64})
	defer rdb.Close()
	note := "" // a caveat for the rendered rows; none on the sharded layout
	st, err := redisstore.New(rdb, redisstore.Config{Prefix: "kb:"})
	if err != nil {
		return err
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		return err
	}
	slices.Sort(masters)
	data := make([]byte, sessionDataLen)
	rand.Read(data)
	expires := time.Now().Add(2 * time.Hour)
	var ids [][]byte
	var counts []int
	for n := 1000; n <= top; n *= 10 {
		counts = append(counts, n)
	}
	for _, n := range counts {
		from := len(ids)
		for range n - from {
			id := make([]byte, storage.SessionIDLen)
			rand.Read(id)
			ids = append(ids, id)
		}
		if err := fillUsers(ctx, st, ids, from, n, data, expires); err != nil {
			return fmt.Errorf("filling to %d users: %w", n, err)
		}
		keys, err := c.KeysPerMaster(ctx)
		if err != nil {
			return err
		}
		var total, lo, hi int64
		for i, m := range masters {
			k := keys[m]
			total += k
			if i == 0 || k < lo {
				lo = k
			}
			hi = max(hi, k)
			em.point("cluster", fmt.Sprintf("master %d", i+1), float64(n), "users (one session each)", float64(k), "keys on the master (DBSIZE)", "cluster-keys")
		}
		log.Printf("cluster: %d users: keys per master %v", n, keys)
		if n == counts[len(counts)-1] {
			em.fact("cluster", fmt.Sprintf("users stored (one session each), %d masters", len(masters)), float64(n), "users", note)
			em.fact("cluster", "keys on all masters", float64(total), "keys", "")
			em.fact("cluster", "keys on the emptiest master", float64(lo), "keys", "")
			em.fact("cluster", "share of all keys on the fullest master", 100*float64(hi)/float64(max(total, 1)), "%", fmt.Sprintf("an even spread over %d masters is %.1f %%", len(masters), 100/float64(len(masters))))
		}
	}
	ref := "kb-ref-get"
	if err := rdb.Set(ctx, ref, make([]byte, sessionDataLen+64), time.Hour).Err(); err != nil {
		return err
	}
	n := len(ids)
	med, err := compare(ctx, *perSide,
		side{label: "GetSession", op: func(i int) error {
			_, err := st.GetSession(ctx, ids[(i*2654435761)%n])
			return err
		}},
		side{label: "GET", op: func(int) error { return rdb.Get(ctx, ref).Err() }},
	)
	if err != nil {
		return err
	}
	em.ratio("cluster", fmt.Sprintf("GetSession on a 3-master cluster, %d sessions stored", n), "redisstore GetSession, cluster client (serial)", med[0]/1000,
		fmt.Sprintf("plain GET of %d bytes on the same cluster", sessionDataLen+64), med[1]/1000, "µs/op", true, note)
	return nil
}

// fillUsers stores one session for each of users from..to-1 (user i owns
// ids[i]).
func fillUsers(ctx context.Context, st storage.SessionStore, ids [][]byte, from, to int, data []byte, expires time.Time) error {
	return fillWith(ctx, from, to, func(k int) error {
		return st.PutSession(ctx, storage.Session{ID: ids[k], UserID: fmt.Sprintf("user-%d", k), Expires: expires, Data: data}, 0)
	})
}
