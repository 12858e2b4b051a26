// Package storetest gives tests their own real PostgreSQL database and
// their own Redis DB number, so test packages run in parallel without
// touching each other. `make test` starts both servers when they are not
// running; DATABASE_URL and REDIS_URL name them.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmq/crmq/store"
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// ServerURL returns DATABASE_URL (or the local default) with its path
// replaced by dbname.
func ServerURL(dbname string) string {
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		raw = defaultDatabaseURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + dbname
	return u.String()
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// template builds, once per test binary, a migrated database that every
// test clones; CREATE DATABASE ... TEMPLATE is far cheaper than migrating.
func template(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		templateName = fmt.Sprintf("crmq_tmpl_%d_%s", time.Now().Unix(), randomSuffix())
		admin, err := store.Open(ctx, ServerURL("postgres"), 2)
		if err != nil {
			templateErr = fmt.Errorf("postgres not reachable (run `make test`, which starts it): %w", err)
			return
		}
		defer admin.Close()
		dropStaleTemplates(ctx, admin)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+templateName); err != nil {
			templateErr = fmt.Errorf("create template: %w", err)
			return
		}
		db, err := store.Open(ctx, ServerURL(templateName), 2)
		if err != nil {
			templateErr = err
			return
		}
		defer db.Close()
		templateErr = store.Migrate(ctx, db.DB.DB)
	})
	return templateName, templateErr
}

// templateMaxAge is how long a test binary's template may live: no test
// run takes this long, so an older one belongs to a run that has ended
// (a test binary has no hook that runs after its last test).
const templateMaxAge = 3 * time.Hour

// dropStaleTemplates removes the templates of test runs that have ended,
// so a development database does not fill up with one per test binary.
// Best effort: a failure leaves them for the next run.
func dropStaleTemplates(ctx context.Context, admin *store.DB) {
	var names []string
	if err := admin.SelectContext(ctx, &names, `SELECT datname FROM pg_database WHERE datname LIKE 'crmq\_tmpl\_%'`); err != nil {
		return
	}
	for _, name := range names {
		var born int64
		var suffix string
		if n, _ := fmt.Sscanf(name, "crmq_tmpl_%d_%s", &born, &suffix); n == 2 && time.Since(time.Unix(born, 0)) < templateMaxAge {
			continue
		}
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
}

// NewDB returns a fresh, migrated database for this test, dropped when the
// test ends, and its URL (for processes the test starts).
func NewDB(t testing.TB) (*store.DB, string) {
	t.Helper()
	ctx := context.Background()
	tmpl, err := template(ctx)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	name := "crmq_t_" + randomSuffix()
	admin, err := store.Open(ctx, ServerURL("postgres"), 1)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	// A template must have no other sessions while it is copied; tests of
	// one package may clone it concurrently, so retry the rare collision.
	for i := 0; ; i++ {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		admin.Close()
		t.Fatalf("clone test database: %v", err)
	}
	dbURL := ServerURL(name)
	db, err := store.Open(ctx, dbURL, 20)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	})
	return db, dbURL
}

// RedisURL claims a Redis DB number nobody else is using, empties it, and
// returns its URL; the claim is released and the DB emptied when the test
// ends. The claim is a key with a TTL in DB 0, so a crashed run frees its
// DB numbers by itself.
func RedisURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	raw := os.Getenv("REDIS_URL")
	if raw == "" {
		raw = defaultRedisURL
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opt.DB = 0
	ctl := redis.NewClient(opt)
	defer ctl.Close()
	n := 16
	if v, err := ctl.ConfigGet(ctx, "databases").Result(); err == nil {
		if d, err := strconv.Atoi(v["databases"]); err == nil {
			n = d
		}
	} else if err := ctl.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis not reachable (run `make test`, which starts it): %v", err)
	}
	token := randomSuffix()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		for db := 1; db < n; db++ {
			lockKey := "crmq:test:claim:" + strconv.Itoa(db)
			ok, err := ctl.SetNX(ctx, lockKey, token, 30*time.Minute).Result()
			if err != nil {
				t.Fatalf("claim redis db: %v", err)
			}
			if !ok {
				continue
			}
			opt.DB = db
			c := redis.NewClient(opt)
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush redis db %d: %v", db, err)
			}
			c.Close()
			dbOpt := *opt
			t.Cleanup(func() {
				c := redis.NewClient(&dbOpt)
				_ = c.FlushDB(context.Background()).Err()
				c.Close()
				ctl := redis.NewClient(&redis.Options{Addr: dbOpt.Addr, Username: dbOpt.Username, Password: dbOpt.Password})
				_ = ctl.Del(context.Background(), lockKey).Err()
				ctl.Close()
			})
			u, _ := url.Parse(raw)
			u.Path = "/" + strconv.Itoa(db)
			return u.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no free redis db among %d", n)
	return ""
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewOrg creates an org with an API key in db.
func NewOrg(t testing.TB, db *store.DB, name string) (store.Org, string) {
	t.Helper()
	org, key, err := db.CreateOrgWithKey(context.Background(), name)
	if err != nil {
		t.Fatalf("create org %s: %v", name, err)
	}
	return org, key
}
