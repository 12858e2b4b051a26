package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers/enrich/sites"
)

// runDemoSites serves the fixture company sites of the demo on loopback
// until stopped, so a new user can enrich demo accounts without the
// internet. `make run` starts it and allows the address in the dev
// config only.
func runDemoSites(ctx context.Context, c *cli, args []string) error {
	fs := c.flags()
	addr := fs.String("addr", "127.0.0.1:8091", "host and first port; the sites take consecutive ports")
	c.detail = "Serves " + fmt.Sprint(sites.Demo) + " (JSON-LD; meta tags and text only; WordPress with Google Analytics and\n" +
		"HubSpot; robots.txt disallowing everything), one per port from --addr."
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	host, port, err := splitBase(*addr)
	if err != nil {
		return usagef(c.cmd, "--addr: %v", err)
	}
	done, err := sites.Serve(ctx, host, port)
	if err != nil {
		return err
	}
	for i, name := range sites.Demo {
		c.logger().InfoContext(ctx, "demo site", "site", name, "url", sites.DemoURL(host, port, i))
	}
	for err := range done {
		return err
	}
	return nil
}

func splitBase(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port+len(sites.Demo) > 65535 {
		return "", 0, fmt.Errorf("port %q", p)
	}
	return host, port, nil
}

// seedDemoSiteAccounts upserts one account per demo site (its website the
// site's address), two of them with fields already filled, which a bulk
// enrichment leaves as they are.
func seedDemoSiteAccounts(ctx context.Context, db *store.DB, orgID int64, addr string) error {
	host, port, err := splitBase(addr)
	if err != nil {
		return fmt.Errorf("--sites: %w", err)
	}
	var rows []json.RawMessage
	for i, name := range sites.Demo {
		row := map[string]any{"external_id": "site-" + name, "name": name + " (demo site)", "website": sites.DemoURL(host, port, i)}
		if i%2 == 1 {
			row["industry"] = "Set by hand"
		}
		b, err := json.Marshal(row)
		if err != nil {
			return err
		}
		rows = append(rows, b)
	}
	res, err := db.UpsertRecords(ctx, orgID, "accounts", rows)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("demo site accounts: %d failed", res.Failed)
	}
	return nil
}
