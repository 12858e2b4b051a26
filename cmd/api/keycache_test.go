package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crmq/crmq/store"
)

func TestKeyCacheRemembersKnownKeysForTheTTL(t *testing.T) {
	calls := 0
	lookup := func(_ context.Context, key string) (store.Org, error) {
		calls++
		if key == "crmq_bad" {
			return store.Org{}, store.ErrNotFound
		}
		return store.Org{ID: 7}, nil
	}
	c := newKeyCache(50*time.Millisecond, lookup)
	ctx := context.Background()
	for range 3 {
		if o, err := c.org(ctx, "crmq_good"); err != nil || o.ID != 7 {
			t.Fatalf("%v %v", o, err)
		}
	}
	if calls != 1 {
		t.Fatalf("3 lookups within the TTL reached the store %d times", calls)
	}
	for range 2 {
		if _, err := c.org(ctx, "crmq_bad"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("unknown keys must not be cached: %d store calls", calls)
	}
	time.Sleep(60 * time.Millisecond)
	c.org(ctx, "crmq_good")
	if calls != 4 {
		t.Fatalf("expired entry not looked up again: %d store calls", calls)
	}
	off := newKeyCache(0, lookup)
	off.org(ctx, "crmq_good")
	off.org(ctx, "crmq_good")
	if calls != 6 {
		t.Fatalf("TTL 0 must disable the cache: %d store calls", calls)
	}
}
