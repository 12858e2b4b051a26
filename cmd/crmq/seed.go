package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmq/crmq/cmd/internal/demo"
	"github.com/crmq/crmq/store"
)

// runSeed loads the deterministic demo dataset into an org (created when
// missing), configures ABM for it (techniques refreshed, two segments) and
// prints a new API key for it, and nothing else, on stdout.
// Seeding again upserts the same rows.
func runSeed(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	orgName := fs.String("org", defaultOrg, "org to seed (created when missing)")
	siteAddr := fs.String("sites", "", "also upsert one account per demo site served by `crmq demo-sites --addr` at this address")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	org, err := db.OrgByName(ctx, *orgName)
	if errors.Is(err, store.ErrNotFound) {
		org, err = db.CreateOrg(ctx, *orgName)
		if errors.Is(err, store.ErrConflict) { // created concurrently
			org, err = db.OrgByName(ctx, *orgName)
		}
	}
	if err != nil {
		return err
	}
	start := time.Now()
	counts, err := demo.Seed(ctx, db, org.ID, time.Now())
	if err != nil {
		return fmt.Errorf("seed org %q: %w", org.Name, err)
	}
	c.logger().InfoContext(ctx, "demo data loaded", "org", org.Name, "org_id", org.ID,
		"rows", counts.Modules, "field_history", counts.FieldHistory, "duration", time.Since(start))
	abm, err := demo.SeedABM(ctx, db, org.ID, time.Now())
	if err != nil {
		return fmt.Errorf("configure ABM for org %q: %w", org.Name, err)
	}
	for _, sg := range abm.Segments {
		c.logger().InfoContext(ctx, "demo segment", "org", org.Name, "segment", sg.Name, "members", sg.MemberCount)
	}
	if *siteAddr != "" {
		if err := seedDemoSiteAccounts(ctx, db, org.ID, *siteAddr); err != nil {
			return err
		}
	}
	key, err := db.CreateAPIKey(ctx, org.ID)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, key)
	return err
}
