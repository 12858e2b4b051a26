package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/storetest"
)

// Usage mistakes are caught before any connection is made, so these run
// with whatever DATABASE_URL and REDIS_URL the environment has.
func TestCommandLine(t *testing.T) {
	t.Setenv("CRMQ_BENCH_KEY", "")
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderrLine string // substring of the one stderr line
	}{
		{"no command is a usage error", nil, 2, "", "crmq: no command given"},
		{"an unknown command is a usage error", []string{"nope"}, 2, "", `unknown command "nope"`},
		{"a group without subcommand names its subcommands", []string{"org"}, 2, "", "create, key"},
		{"help lists every command", []string{"help"}, 0, "bench e2e", ""},
		{"help COMMAND is the command's -h", []string{"help", "org", "key"}, 0, "usage: crmq org key NAME", ""},
		{"-h prints usage to stdout and succeeds", []string{"enqueue", "-h"}, 0, "TYPE is one of: " + strings.Join(jobs.GenericTypes(), ", "), ""},
		{"an unknown flag is a usage error", []string{"migrate", "--force"}, 2, "", "crmq migrate: flag provided but not defined: -force"},
		{"org create needs a name", []string{"org", "create"}, 2, "", "missing NAME"},
		{"org key refuses an unknown scope and lists the valid ones", []string{"org", "key", "acme", "--scopes", "summaries,records"}, 2, "", `unknown scope "records" (valid scopes: ` + strings.Join(store.Scopes(), ", ") + ")"},
		{"org key refuses an empty scope list", []string{"org", "key", "acme", "--scopes", " , "}, 2, "", "no scopes given"},
		{"org key -h lists the scopes", []string{"org", "key", "-h"}, 0, "Scopes: " + strings.Join(store.Scopes(), ", "), ""},
		{"org create takes one name", []string{"org", "create", "a", "b"}, 2, "", `unexpected argument "b"`},
		{"a blank org name is refused", []string{"org", "create", "  "}, 2, "", "1 to 100 characters"},
		{"enqueue refuses an unknown type", []string{"enqueue", "mail:send"}, 2, "", "unknown job type"},
		{"enqueue refuses an unknown queue", []string{"enqueue", "system:ping", "--queue", "urgent"}, 2, "", "must be critical, default or low"},
		{"orphans run only on low", []string{"enqueue", "orphans:recompute", "--queue", "low"}, 2, "", "always runs on queue low"},
		{"job needs an id", []string{"job"}, 2, "", "missing ID"},
		{"bench needs a key", []string{"bench", "e2e"}, 2, "", "CRMQ_BENCH_KEY"},
		{"bench refuses a zero rate", []string{"bench", "e2e", "--key", "k", "--rate", "0"}, 2, "", "--rate"},
		{"bench refuses an unknown queue", []string{"bench", "e2e", "--key", "k", "--queue", "x"}, 2, "", "--queue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := crmq(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tc.stdout)
			}
			if tc.stderrLine == "" {
				if stderr != "" {
					t.Errorf("stderr %q, want nothing", stderr)
				}
				return
			}
			if !strings.Contains(stderr, tc.stderrLine) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line containing %q", stderr, tc.stderrLine)
			}
		})
	}
}

func TestMigrateOnAFreshDatabaseIsIdempotent(t *testing.T) {
	ctx := context.Background()
	admin, err := store.Open(ctx, storetest.ServerURL("postgres"), 1)
	if err != nil {
		t.Fatal(err)
	}
	name := "crmq_cli_" + randomHex(6)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	})
	t.Setenv("DATABASE_URL", storetest.ServerURL(name))
	t.Setenv("CRMQ_LOG_LEVEL", "warn")
	for i := range 2 {
		if code, stdout, stderr := crmq(t, "migrate"); code != 0 || stdout != "" {
			t.Fatalf("migrate #%d: exit %d, stdout %q, stderr %q", i+1, code, stdout, stderr)
		}
	}
	db, err := store.Open(ctx, storetest.ServerURL(name), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.OrgIDs(ctx); err != nil {
		t.Fatalf("schema missing after migrate: %v", err)
	}
}

func TestOrgCreatePrintsOnlyTheKey(t *testing.T) {
	ctx := context.Background()
	s := newStack(t)

	code, stdout, stderr := crmq(t, "org", "create", "acme")
	if code != 0 {
		t.Fatalf("org create: exit %d, stderr %q", code, stderr)
	}
	key := strings.TrimSuffix(stdout, "\n")
	if strings.ContainsAny(key, " \n") || !strings.HasPrefix(key, "crmq_") {
		t.Fatalf("stdout %q, want only the key", stdout)
	}
	g, err := s.db.GrantByKey(ctx, key)
	if err != nil || g.Org.Name != "acme" || g.Scopes != nil {
		t.Fatalf("printed key resolves to %+v, %v; want org acme with every scope", g, err)
	}
	org := g.Org

	t.Run("a taken name fails with one clear line", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "org", "create", "acme")
		if code != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
		}
		if !strings.Contains(stderr, `org name "acme" is taken`) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("stderr %q, want one line saying the name is taken", stderr)
		}
	})
	t.Run("org key issues another working key", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "org", "key", "acme")
		second := strings.TrimSpace(stdout)
		if code != 0 || second == key {
			t.Fatalf("exit %d, key %q (first %q), stderr %q", code, second, key, stderr)
		}
		if got, err := s.db.GrantByKey(ctx, second); err != nil || got.Org.ID != org.ID || got.Scopes != nil {
			t.Errorf("second key resolves to %+v, %v; want org %d with every scope", got, err, org.ID)
		}
	})
	t.Run("org key --scopes issues a key with those scopes alone", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "org", "key", "acme", "--scopes", "records:read, summaries")
		scoped := strings.TrimSuffix(stdout, "\n")
		if code != 0 || !store.OrgKeyShaped(scoped) {
			t.Fatalf("exit %d, stdout %q, stderr %q; want only the key", code, stdout, stderr)
		}
		got, err := s.db.GrantByKey(ctx, scoped)
		if err != nil || got.Org.ID != org.ID || !slices.Equal(got.Scopes, []string{"summaries", "records:read"}) {
			t.Errorf("scoped key resolves to %+v, %v; want org %d with summaries and records:read", got, err, org.ID)
		}
	})
	t.Run("org key for a missing org fails", func(t *testing.T) {
		code, stdout, stderr := crmq(t, "org", "key", "nobody")
		if code != 1 || stdout != "" || !strings.Contains(stderr, `no org named "nobody"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
}

func TestEnqueueWaitAndJobAgainstTheRealWorker(t *testing.T) {
	s := newStack(t)
	s.startWorker(t)
	for _, org := range []string{"demo", "other"} {
		if code, _, stderr := crmq(t, "org", "create", org); code != 0 {
			t.Fatalf("org create %s: %s", org, stderr)
		}
	}

	code, stdout, stderr := crmq(t, "enqueue", "system:ping", "--wait", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("enqueue --wait: exit %d, stderr %q", code, stderr)
	}
	var job struct {
		ID, Type, Queue, State string
		Attempts               int
		Result                 struct{ Queue string }
	}
	if err := json.Unmarshal([]byte(stdout), &job); err != nil {
		t.Fatalf("stdout is not the job JSON: %v\n%s", err, stdout)
	}
	if job.State != store.JobSucceeded || job.Type != "system:ping" || job.Queue != "critical" || job.Attempts != 1 || job.Result.Queue != "critical" {
		t.Errorf("final job %+v, want a succeeded ping on critical with its result", job)
	}

	t.Run("job prints the same row as indented JSON", func(t *testing.T) {
		code, out, stderr := crmq(t, "job", job.ID)
		if code != 0 || !strings.Contains(out, "\n  \"id\": \""+job.ID+"\"") || !strings.Contains(out, `"state": "succeeded"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("another org cannot read the job", func(t *testing.T) {
		code, out, stderr := crmq(t, "job", job.ID, "--org", "other")
		if code != 1 || out != "" || !strings.Contains(stderr, "has no job") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
	t.Run("enqueue without --wait prints only the id", func(t *testing.T) {
		code, out, stderr := crmq(t, "enqueue", "system:ping", "--queue", "low", "--org", "other")
		id := strings.TrimSpace(out)
		if code != 0 || len(id) != 36 || strings.Count(out, "\n") != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want one uuid line", code, out, stderr)
		}
		org, err := s.db.OrgByName(context.Background(), "other")
		if err != nil {
			t.Fatal(err)
		}
		j, err := awaitFinal(context.Background(), s.db, org.ID, id, time.Minute)
		if err != nil || j.State != store.JobSucceeded || j.Queue != "low" {
			t.Errorf("job %+v, %v; want it succeeded on low", j, err)
		}
	})
	t.Run("enqueue summary:generate goes through the summary admission", func(t *testing.T) {
		ctx := context.Background()
		org, err := s.db.OrgByName(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range [][2]string{ // accounts first: the contact looks its account up
			{"accounts", `{"external_id":"acc-1","name":"Acme Freight"}`},
			{"contacts", `{"external_id":"c-1","first_name":"Ada","account":"acc-1","state":"draft"}`},
		} {
			if res, err := s.db.UpsertRecords(ctx, org.ID, in[0], []json.RawMessage{json.RawMessage(in[1])}); err != nil || res.Failed != 0 {
				t.Fatalf("ingest %s: %+v %v", in[0], res, err)
			}
		}
		code, out, stderr := crmq(t, "enqueue", "summary:generate", "--module", "accounts", "--record", "acc-1", "--user", "user-1", "--wait")
		if code != 0 || !strings.Contains(out, `"state": "succeeded"`) {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
		if u, err := s.db.SummaryUsageOf(ctx, org.ID, "user-1", time.Now(), 100); err != nil || u.Used != 1 {
			t.Errorf("user-1's usage after the CLI summary: %+v, %v; want 1 counted", u, err)
		}
		code, _, stderr = crmq(t, "enqueue", "summary:generate", "--module", "contacts", "--record", "c-1", "--user", "user-1")
		if code != 1 || !strings.Contains(stderr, "cannot be summarized") {
			t.Errorf("draft record: exit %d, stderr %q; want the admission's refusal", code, stderr)
		}
		code, _, stderr = crmq(t, "enqueue", "summary:generate", "--module", "accounts", "--record", "acc-1")
		if code != 2 || !strings.Contains(stderr, "X-User-ID") && !strings.Contains(stderr, "--user") {
			t.Errorf("no user: exit %d, stderr %q; want a usage error", code, stderr)
		}
	})
	t.Run("enqueue for a missing org fails", func(t *testing.T) {
		code, out, stderr := crmq(t, "enqueue", "system:ping", "--org", "nobody")
		if code != 1 || out != "" || !strings.Contains(stderr, `no org named "nobody"`) {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
		}
	})
}

func TestEnqueueWaitIsBoundedWithoutAWorker(t *testing.T) {
	newStack(t)
	if code, _, stderr := crmq(t, "org", "create", "demo"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := crmq(t, "enqueue", "system:ping", "--wait", "--timeout", "300ms")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "still queued after 300ms") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 saying the job is still queued", code, stdout, stderr)
	}
}

func TestFinalOutcomeFailsForFailedJobs(t *testing.T) {
	msg := "boom"
	for _, tc := range []struct {
		job  store.Job
		want string
	}{
		{store.Job{ID: "a", State: store.JobSucceeded}, ""},
		{store.Job{ID: "b", State: store.JobFailed, Attempts: 2, Error: &msg}, "job b failed after 2 attempt(s): boom"},
		{store.Job{ID: "c", State: store.JobCancelled}, "job c cancelled"},
	} {
		err := finalOutcome(tc.job)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.job.State, err, tc.want)
		}
	}
}
