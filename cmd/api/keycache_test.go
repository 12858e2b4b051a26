package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

func TestKeyCacheRemembersKnownKeysForTheTTL(t *testing.T) {
	calls := 0
	lookup := func(_ context.Context, key string) (store.KeyGrant, error) {
		calls++
		if key == "crmq_bad" {
			return store.KeyGrant{}, store.ErrNotFound
		}
		return store.KeyGrant{Org: store.Org{ID: 7}, Scopes: []string{store.ScopeJobs}}, nil
	}
	c := newKeyCache(50*time.Millisecond, lookup)
	ctx := context.Background()
	for range 3 {
		// A cached entry keeps the key's scopes: dropping them would
		// give a scoped key every scope (nil) from its second request on.
		if g, err := c.grant(ctx, "crmq_good"); err != nil || g.Org.ID != 7 || !slices.Equal(g.Scopes, []string{store.ScopeJobs}) {
			t.Fatalf("%+v %v", g, err)
		}
	}
	if calls != 1 {
		t.Fatalf("3 lookups within the TTL reached the store %d times", calls)
	}
	for range 2 {
		if _, err := c.grant(ctx, "crmq_bad"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("unknown keys must not be cached: %d store calls", calls)
	}
	time.Sleep(60 * time.Millisecond)
	c.grant(ctx, "crmq_good")
	if calls != 4 {
		t.Fatalf("expired entry not looked up again: %d store calls", calls)
	}
	off := newKeyCache(0, lookup)
	off.grant(ctx, "crmq_good")
	off.grant(ctx, "crmq_good")
	if calls != 6 {
		t.Fatalf("TTL 0 must disable the cache: %d store calls", calls)
	}
}
