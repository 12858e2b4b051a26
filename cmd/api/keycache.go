package main

import (
	"context"
	"sync"
	"time"

	"github.com/crmq/crmq/store"
)

// keyCache remembers which org a key belongs to, and its scopes, for a
// short time, so a client polling a job does not cost a Postgres lookup
// per request. A revoked key keeps working for at most the TTL. Unknown
// keys are not cached. Entries are keyed by the key's hash, as in the
// database.
type keyCache struct {
	lookup func(ctx context.Context, key string) (store.KeyGrant, error)
	ttl    time.Duration
	max    int

	mu sync.Mutex
	m  map[string]cachedGrant
}

type cachedGrant struct {
	grant store.KeyGrant
	until time.Time
}

func newKeyCache(ttl time.Duration, lookup func(context.Context, string) (store.KeyGrant, error)) *keyCache {
	return &keyCache{lookup: lookup, ttl: ttl, max: 10000, m: map[string]cachedGrant{}}
}

func (c *keyCache) grant(ctx context.Context, key string) (store.KeyGrant, error) {
	if c.ttl <= 0 {
		return c.lookup(ctx, key)
	}
	h := string(store.HashKey(key))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.grant, nil
	}
	g, err := c.lookup(ctx, key)
	if err != nil {
		return g, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m { // drop what expired; if nothing did, start over
			if now.After(v.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[h] = cachedGrant{grant: g, until: now.Add(c.ttl)}
	return g, nil
}
