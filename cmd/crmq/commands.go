package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crmq/crmq/cmd/internal/proc"
	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// defaultOrg is the org `make run` seeds; enqueue and job use it unless told.
const defaultOrg = "demo"

func runMigrate(ctx context.Context, c *cli, args []string) error {
	if _, err := c.parse(c.flags(), args, 0, 0); err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx, db.DB.DB); err != nil {
		return err
	}
	c.logger().InfoContext(ctx, "database migrated")
	return nil
}

func runOrgCreate(ctx context.Context, c *cli, args []string) error {
	name, err := c.orgNameArg(c.flags(), args)
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, key, err := db.CreateOrgWithKey(ctx, name)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("org name %q is taken (`crmq org key %s` issues another key for it): %w", name, name, err)
	}
	if err != nil {
		return err
	}
	c.logger().InfoContext(ctx, "org created", "org_id", org.ID, "name", org.Name)
	_, err = fmt.Fprintln(c.stdout, key)
	return err
}

func runOrgKey(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	scopeList := fs.String("scopes", "", "comma-separated scopes the key carries (default: every scope, also scopes added later)")
	c.detail = "Scopes: " + strings.Join(store.Scopes(), ", ") + "."
	name, err := c.orgNameArg(fs, args)
	if err != nil {
		return err
	}
	var scopes []string // nil: every scope
	if flagSet(fs, "scopes") {
		if scopes, err = store.ParseScopes(splitList(*scopeList)); err != nil {
			return usagef(c.cmd, "--scopes: %s", err.Error())
		}
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := orgByName(ctx, db, name)
	if err != nil {
		return err
	}
	var key string
	if scopes == nil {
		key, err = db.CreateAPIKey(ctx, org.ID)
	} else {
		key, err = db.CreateScopedAPIKey(ctx, org.ID, scopes)
	}
	if err != nil {
		return err
	}
	c.logger().InfoContext(ctx, "api key issued", "org_id", org.ID, "name", org.Name, "scopes", scopes)
	_, err = fmt.Fprintln(c.stdout, key)
	return err
}

// flagSet tells whether the command line set the flag, even to "".
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// orgNameArg reads the NAME of org create / org key, with the API's rule,
// and the command's flags.
func (c *cli) orgNameArg(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(pos[0])
	if name == "" || len(name) > 100 {
		return "", usagef(c.cmd, "NAME must be 1 to 100 characters")
	}
	return name, nil
}

func orgByName(ctx context.Context, db *store.DB, name string) (store.Org, error) {
	org, err := db.OrgByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Org{}, fmt.Errorf("no org named %q (create it with `crmq org create %s`): %w", name, name, err)
	}
	return org, err
}

func runEnqueue(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	orgName := fs.String("org", defaultOrg, "org that owns the job")
	queue := fs.String("queue", "", "queue to probe, for system:ping: critical, default or low (default: the type's own queue)")
	wait := fs.Bool("wait", false, "wait for a final state and print the job as JSON instead of its id; exit 1 if it failed")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --wait: how long to wait")
	module := fs.String("module", "", "summary:generate: the record's module")
	record := fs.String("record", "", "summary:generate: the record's external id")
	user := fs.String("user", "", "summary:generate: the acting user, counted against the daily limit")
	regenerate := fs.Bool("regenerate", false, "summary:generate: generate again even if a summary of the same data exists")
	c.detail = "TYPE is one of: " + strings.Join(append(jobs.GenericTypes(), jobs.TypeSummaryGenerate), ", ") +
		". summary:generate goes through the same admission as POST /v1/summaries (record checks, the user's daily limit)."
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef(c.cmd, "--timeout must be positive")
	}
	generic := jobs.Generic{Type: pos[0], Queue: *queue}
	summaryReq := jobs.SummaryRequest{UserID: *user, Module: *module, RecordID: *record, Regenerate: *regenerate}
	// Check the arguments before touching the network; org 1 stands in
	// for the real org, which only the payload carries.
	if pos[0] == jobs.TypeSummaryGenerate {
		if err := (jobs.SummaryPayload{OrgID: 1, UserID: *user, Module: *module, RecordID: *record}).Validate(); err != nil {
			return usagef(c.cmd, "%s (use --module, --record and --user)", err.Error())
		}
	} else if _, err := jobs.FromGeneric(1, generic); err != nil {
		return usagef(c.cmd, "%s", err.Error())
	}

	cfg, err := c.config()
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := orgByName(ctx, db, *orgName)
	if err != nil {
		return err
	}
	redisOpt, err := proc.RedisOpt(cfg)
	if err != nil {
		return err
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	enq := &jobs.Enqueuer{DB: db, Client: client, Log: c.logger()}
	var job store.Job
	if pos[0] == jobs.TypeSummaryGenerate {
		summaryReq.OrgID, summaryReq.Limit, summaryReq.Now = org.ID, cfg.SummaryLimit, time.Now()
		adm, err := enq.AdmitSummary(ctx, summaryReq)
		if err != nil {
			return err
		}
		job = adm.Job
	} else {
		task, err := jobs.FromGeneric(org.ID, generic)
		if err != nil {
			return err
		}
		if job, _, err = enq.Enqueue(ctx, jobs.Request{OrgID: org.ID, Task: task}); err != nil {
			return err
		}
	}
	c.logger().InfoContext(ctx, "job enqueued", "job_id", job.ID, "type", job.Type, "queue", job.Queue, "org", org.Name)
	if !*wait {
		_, err = fmt.Fprintln(c.stdout, job.ID)
		return err
	}
	job, err = awaitFinal(ctx, db, org.ID, job.ID, *timeout)
	if err != nil {
		return err
	}
	if err := printJSON(c.stdout, job); err != nil {
		return err
	}
	return finalOutcome(job)
}

// awaitFinal polls the job row until it reaches a final state or timeout.
func awaitFinal(ctx context.Context, db *store.DB, orgID int64, id string, timeout time.Duration) (store.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	state := "unknown"
	for {
		job, err := db.Job(ctx, orgID, id)
		switch {
		case err == nil && store.JobFinal(job.State):
			return job, nil
		case err == nil:
			state = job.State
		case ctx.Err() == nil:
			return store.Job{}, err
		}
		select {
		case <-ctx.Done():
			return store.Job{}, fmt.Errorf("job %s still %s after %s (is a worker consuming its queue?): %w", id, state, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// finalOutcome turns a failed or cancelled job into an error (exit 1).
func finalOutcome(job store.Job) error {
	if job.State == store.JobSucceeded {
		return nil
	}
	msg := ""
	if job.Error != nil {
		msg = ": " + *job.Error
	}
	return fmt.Errorf("job %s %s after %d attempt(s)%s", job.ID, job.State, job.Attempts, msg)
}

func runJob(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	orgName := fs.String("org", defaultOrg, "org that owns the job")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := orgByName(ctx, db, *orgName)
	if err != nil {
		return err
	}
	job, err := db.Job(ctx, org.ID, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("org %q has no job %q: %w", org.Name, pos[0], err)
	}
	if err != nil {
		return err
	}
	return printJSON(c.stdout, job)
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
