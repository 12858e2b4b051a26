package main

import (
	"context"
	"sync"
	"time"

	"github.com/crmq/crmq/store"
)

// keyCache remembers which org a key belongs to for a short time, so a
// client polling a job does not cost a Postgres lookup per request. A
// revoked key keeps working for at most the TTL. Unknown keys are not
// cached. Entries are keyed by the key's hash, as in the database.
type keyCache struct {
	lookup func(ctx context.Context, key string) (store.Org, error)
	ttl    time.Duration
	max    int

	mu sync.Mutex
	m  map[string]cachedOrg
}

type cachedOrg struct {
	org   store.Org
	until time.Time
}

func newKeyCache(ttl time.Duration, lookup func(context.Context, string) (store.Org, error)) *keyCache {
	return &keyCache{lookup: lookup, ttl: ttl, max: 10000, m: map[string]cachedOrg{}}
}

func (c *keyCache) org(ctx context.Context, key string) (store.Org, error) {
	if c.ttl <= 0 {
		return c.lookup(ctx, key)
	}
	h := string(store.HashKey(key))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.org, nil
	}
	org, err := c.lookup(ctx, key)
	if err != nil {
		return org, err
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
	c.m[h] = cachedOrg{org: org, until: now.Add(c.ttl)}
	return org, nil
}
