package store_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

func TestParseScopes(t *testing.T) {
	t.Run("known names come back once each, in the order of Scopes", func(t *testing.T) {
		got, err := store.ParseScopes([]string{"jobs", "summaries", "jobs", "records:read"})
		if err != nil || !slices.Equal(got, []string{"summaries", "records:read", "jobs"}) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("an unknown name is refused and the error lists the valid ones", func(t *testing.T) {
		_, err := store.ParseScopes([]string{"summaries", "records", "admin"})
		if !errors.Is(err, store.ErrUnknownScope) {
			t.Fatalf("want ErrUnknownScope, got %v", err)
		}
		for _, want := range append([]string{`"records"`, `"admin"`}, store.Scopes()...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
	t.Run("an empty list is refused: leaving the list out is how every scope is asked for", func(t *testing.T) {
		if _, err := store.ParseScopes([]string{}); !errors.Is(err, store.ErrNoScopes) {
			t.Fatalf("want ErrNoScopes, got %v", err)
		}
	})
}

func TestScopedKeysCarryTheirScopes(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, first := storetest.NewOrg(t, db, "a")
	another, err := db.CreateAPIKey(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	scoped, err := db.CreateScopedAPIKey(ctx, org.ID, []string{"records:read", "summaries"})
	if err != nil {
		t.Fatal(err)
	}

	for name, key := range map[string]string{"the first key of an org": first, "a key made without scopes": another} {
		t.Run(name+" has every scope, also one added later", func(t *testing.T) {
			g, err := db.GrantByKey(ctx, key)
			if err != nil || g.Org.ID != org.ID || g.Scopes != nil {
				t.Fatalf("grant %+v, %v; want org %d with nil scopes", g, err, org.ID)
			}
			for _, s := range append(store.Scopes(), "a-scope-of-the-future") {
				if !g.Allows(s) {
					t.Errorf("does not allow %q", s)
				}
			}
			var isNull bool
			if err := db.GetContext(ctx, &isNull, `SELECT scopes IS NULL FROM api_keys WHERE key_hash = $1`, store.HashKey(key)); err != nil || !isNull {
				t.Fatalf("scopes stored as NULL: %v (%v)", isNull, err)
			}
		})
	}
	t.Run("a scoped key allows only its scopes", func(t *testing.T) {
		g, err := db.GrantByKey(ctx, scoped)
		if err != nil || g.Org.ID != org.ID || !slices.Equal(g.Scopes, []string{"summaries", "records:read"}) {
			t.Fatalf("grant %+v, %v", g, err)
		}
		for _, s := range store.Scopes() {
			if want := s == "summaries" || s == "records:read"; g.Allows(s) != want {
				t.Errorf("Allows(%q) = %v, want %v", s, !want, want)
			}
		}
		if o, err := db.OrgByKey(ctx, scoped); err != nil || o.ID != org.ID {
			t.Errorf("OrgByKey: %+v, %v", o, err)
		}
	})
	t.Run("unknown scopes and unknown orgs are refused", func(t *testing.T) {
		if _, err := db.CreateScopedAPIKey(ctx, org.ID, []string{"everything"}); !errors.Is(err, store.ErrUnknownScope) {
			t.Errorf("unknown scope: %v", err)
		}
		if _, err := db.CreateScopedAPIKey(ctx, org.ID+1000, []string{"jobs"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown org: %v", err)
		}
	})
	t.Run("the database refuses an empty list and a NULL scope", func(t *testing.T) {
		for _, v := range []string{"{}", "{jobs,NULL}"} {
			if _, err := db.ExecContext(ctx, `UPDATE api_keys SET scopes = $1 WHERE key_hash = $2`, v, store.HashKey(scoped)); err == nil {
				t.Errorf("scopes %s stored", v)
			}
		}
	})
}

// Keys made before key scopes existed keep every scope after the
// migration, including scopes added after it.
func TestKeysFromBeforeTheScopesMigrationKeepEveryScope(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB.DB, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 60); err != nil {
		t.Fatalf("down to 60: %v", err)
	}
	org, err := db.CreateOrg(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	key := store.NewKey()
	if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (org_id, prefix, key_hash) VALUES ($1, 'crmq_x', $2)`, org.ID, store.HashKey(key)); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, db.DB.DB); err != nil {
		t.Fatal(err)
	}
	g, err := db.GrantByKey(ctx, key)
	if err != nil || g.Org.ID != org.ID || g.Scopes != nil || !g.Allows("a-scope-of-the-future") {
		t.Fatalf("grant %+v, %v; want every scope", g, err)
	}
}
