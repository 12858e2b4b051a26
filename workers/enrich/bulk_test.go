package enrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich"
)

func TestABulkEnrichmentFillsOnlyEmptyFieldsAndCountsEveryRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fields := []string{"industry", "employees", "city", "founded_year", "phone"}
	if _, err := e.db.PutEnrichmentSettings(ctx, e.org, fields, today); err != nil {
		t.Fatal(err)
	}
	var rows, ids []string
	add := func(ext, website, extra string) {
		w := ""
		if website != "" {
			w = fmt.Sprintf(`, "website": %q`, website)
		}
		rows = append(rows, fmt.Sprintf(`{"external_id": %q, "name": %q%s%s}`, ext, ext, w, extra))
		ids = append(ids, ext)
	}
	loop := strings.Replace(e.urls["northwind"], "northwind.test", "loopback.test", 1)
	for i := range 8 {
		extra := ""
		if i < 4 { // filled: these must stay
			extra = `, "industry": "Groceries", "city": "Bremen"`
		}
		add(fmt.Sprintf("nw-%d", i), e.urls["northwind"], extra)
	}
	for i := range 6 {
		extra := ""
		if i == 0 { // everything the site gives is filled: nothing to write
			extra = `, "industry": "Design", "employees": 7, "attributes": {"founded_year": 2001}`
		}
		add(fmt.Sprintf("pr-%d", i), e.urls["pressly"], extra)
		add(fmt.Sprintf("bf-%d", i), e.urls["bluefern"], "")
	}
	for i := range 2 {
		add(fmt.Sprintf("closed-%d", i), e.urls["closed"], "")
		add(fmt.Sprintf("meta-%d", i), e.urls["metadata"], "")
		add(fmt.Sprintf("loop-%d", i), loop, "")
		add(fmt.Sprintf("none-%d", i), "", "")
		add(fmt.Sprintf("silent-%d", i), e.urls["silent"], "")
	}
	if len(ids) != 30 {
		t.Fatalf("%d accounts", len(ids))
	}
	e.ingest(t, "accounts", rows...)
	e.serve(t)

	adm, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, UserID: "user-1", Bulk: true, AccountIDs: ids, Limit: 5000, Now: today})
	if err != nil {
		t.Fatal(err)
	}
	if adm.Records != 30 || adm.Remaining != 4970 || adm.Job.Queue != "low" {
		t.Fatalf("admission %+v", adm)
	}
	var progress []int
	j := e.waitFinal(t, adm.Job.ID, func(p int) {
		if len(progress) == 0 || progress[len(progress)-1] != p {
			progress = append(progress, p)
		}
	})
	if j.State != store.JobSucceeded || j.Progress != 100 {
		t.Fatalf("job %+v", j)
	}
	between := false
	for i, p := range progress {
		if i > 0 && p < progress[i-1] {
			t.Fatalf("progress went back: %v", progress)
		}
		between = between || (p > 0 && p < 100)
	}
	if !between {
		t.Fatalf("no progress between 0 and 100 was seen: %v", progress)
	}
	var res jobs.EnrichBulkResult
	if err := json.Unmarshal(*j.Result, &res); err != nil {
		t.Fatal(err)
	}
	wantReasons := map[string]int{"robots_disallowed": 2, "refused_address": 4, "no_website": 2, "timeout": 2}
	if res.Records != 30 || res.Succeeded != 20 || res.Failed != 10 || res.Enriched != 19 || fmt.Sprint(res.Reasons) != fmt.Sprint(wantReasons) {
		t.Fatalf("result %+v", res)
	}
	for _, f := range res.Failures {
		prefix := map[string]string{"robots_disallowed": "closed-", "refused_address": "", "no_website": "none-", "timeout": "silent-"}[f.Reason]
		if !strings.HasPrefix(f.Account, prefix) || (f.Reason == "refused_address" && !strings.HasPrefix(f.Account, "meta-") && !strings.HasPrefix(f.Account, "loop-")) {
			t.Errorf("failure %+v", f)
		}
	}

	// Filled fields are untouched; empty ones hold what the site gave.
	for i := range 8 {
		a := e.account(t, fmt.Sprintf("nw-%d", i))
		industry, city := "Wholesale Trade", "Hamburg"
		if i < 4 {
			industry, city = "Groceries", "Bremen"
		}
		if a.Values["industry"] != industry || a.Values["city"] != city || a.Values["employees"] != int64(240) ||
			a.Values["founded_year"] != int64(1994) || a.Values["phone"] != "+49 40 555 0100" {
			t.Errorf("nw-%d: %v", i, a.Values)
		}
	}
	if a := e.account(t, "pr-0"); a.Values["industry"] != "Design" || a.Values["employees"] != int64(7) || a.Values["founded_year"] != int64(2001) {
		t.Errorf("pr-0 was overwritten: %v", a.Values)
	}
	if a := e.account(t, "bf-3"); a.Values["industry"] != "Food & Beverage" || a.Values["employees"] != int64(12) || a.Values["city"] != nil {
		t.Errorf("bf-3: %v", a.Values)
	}

	// Every record's proposals stay readable, written or not.
	recs, err := e.db.JobEnrichments(ctx, e.org, adm.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 30 {
		t.Fatalf("%d enrichment rows", len(recs))
	}
	for _, r := range recs {
		if r.Account == "nw-0" {
			if len(r.Proposals) != 5 || strings.Join(r.Written, ",") != "employees,founded_year,phone" {
				t.Errorf("nw-0: written %v proposals %+v", r.Written, r.Proposals)
			}
			for _, p := range r.Proposals {
				if p.Field == "industry" && (p.Proposed != "Wholesale Trade" || p.Current != "Groceries") {
					t.Errorf("nw-0 industry proposal %+v", p)
				}
			}
		}
	}
	h, err := e.db.EnrichmentHistory(ctx, e.org, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != 1 || h.Entries[0].Kind != "bulk" || *h.Entries[0].Records != 19 || len(h.Entries[0].Changes) != 0 {
		t.Fatalf("history %+v", h.Entries)
	}
	stats, err := e.db.EnrichmentStats(ctx, e.org, today.AddDate(0, 0, -7))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, s := range stats {
		k := s.State
		if s.Reason != nil {
			k += ":" + *s.Reason
		}
		counts[k] = s.Records
	}
	if fmt.Sprint(counts) != fmt.Sprint(map[string]int{"succeeded": 20, "failed:robots_disallowed": 2, "failed:refused_address": 4, "failed:no_website": 2, "failed:timeout": 2}) {
		t.Fatalf("stats %v", counts)
	}
}

func TestABulkOfMoreThan500RecordsIsRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := make([]string, 501)
	for i := range ids {
		ids[i] = fmt.Sprintf("a-%d", i)
	}
	var fe jobs.FieldErrors
	if _, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, Bulk: true, AccountIDs: ids, Limit: 5000, Now: today}); !errors.As(err, &fe) {
		t.Fatalf("501 accounts: %v", err)
	}
	// A segment of 501 members too: its membership is read, not its rule.
	rows := make([]string, 501)
	for i := range rows {
		rows[i] = fmt.Sprintf(`{"external_id": "a-%d", "name": "A %d"}`, i, i)
	}
	e.ingest(t, "accounts", rows...)
	var seg int64
	if err := e.db.GetContext(ctx, &seg, `INSERT INTO segments (org_id, name, criteria) VALUES ($1, 'big', '{"conditions": []}') RETURNING id`, e.org); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.ExecContext(ctx, `INSERT INTO segment_members (org_id, segment_id, account_id) SELECT $1, $2, id FROM accounts WHERE org_id = $1`, e.org, seg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, Bulk: true, SegmentID: seg, Limit: 5000, Now: today}); !errors.As(err, &fe) || !strings.Contains(fe["segment_id"], "500") {
		t.Fatalf("segment of 501: %v", err)
	}
	if _, err := e.db.ExecContext(ctx, `DELETE FROM segment_members WHERE account_id = (SELECT max(account_id) FROM segment_members WHERE segment_id = $1)`, seg); err != nil {
		t.Fatal(err)
	}
	adm, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, Bulk: true, SegmentID: seg, Limit: 5000, Now: today})
	if err != nil || adm.Records != 500 {
		t.Fatalf("segment of 500: %+v %v", adm, err)
	}
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 500 {
		t.Fatalf("used %d", used)
	}
}

func TestTheDailyLimitHoldsUnderConcurrentBulkRequests(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rows := make([]string, 200)
	ids := make([]string, 200)
	for i := range rows {
		ids[i] = fmt.Sprintf("a-%d", i)
		rows[i] = fmt.Sprintf(`{"external_id": %q, "name": "A"}`, ids[i])
	}
	e.ingest(t, "accounts", rows...)
	if _, err := e.db.ReserveEnrichments(ctx, e.org, today, 4000, jobs.DefaultEnrichDailyLimit); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepted, refused := 0, 0
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, Bulk: true, AccountIDs: ids, Limit: jobs.DefaultEnrichDailyLimit, Now: today})
			var q *store.EnrichQuotaError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.As(err, &q):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if accepted != 5 || refused != 5 {
		t.Fatalf("accepted %d refused %d, want 5 and 5", accepted, refused)
	}
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 5000 {
		t.Fatalf("used %d, want 5000", used)
	}
	_, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, AccountIDs: ids[:1], Limit: jobs.DefaultEnrichDailyLimit, Now: today})
	var q *store.EnrichQuotaError
	if !errors.As(err, &q) || q.Remaining != 0 || !strings.Contains(q.Error(), "0 remain") {
		t.Fatalf("a single enrichment past the limit: %v", err)
	}
	// The next UTC day starts again.
	if _, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, AccountIDs: ids[:1], Limit: jobs.DefaultEnrichDailyLimit, Now: today.AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
}

// A retried bulk task keeps the records its earlier attempt finished: they
// are not crawled again (here the site has since become one that refuses
// crawlers) and are counted as they were.
func TestARetriedBulkKeepsTheRecordsAlreadyDone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, "accounts", fmt.Sprintf(`{"external_id": "nw", "name": "NW", "website": %q}`, e.urls["northwind"]))
	a := e.account(t, "nw")
	run := func() jobs.EnrichBulkResult {
		res, err := enrich.Bulk{Enricher: e.en}.Run(ctx, workers.Job[jobs.EnrichBulkPayload]{ID: "bulk-1",
			Payload: jobs.EnrichBulkPayload{OrgID: e.org, AccountIDs: []int64{a.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := run()
	e.ingest(t, "accounts", fmt.Sprintf(`{"external_id": "nw", "name": "NW", "website": %q}`, e.urls["closed"]))
	if again := run(); fmt.Sprint(again) != fmt.Sprint(first) || again.Succeeded != 1 {
		t.Fatalf("first %+v, retried %+v", first, again)
	}
	res, err := enrich.Bulk{Enricher: e.en}.Run(ctx, workers.Job[jobs.EnrichBulkPayload]{ID: "bulk-2",
		Payload: jobs.EnrichBulkPayload{OrgID: e.org, AccountIDs: []int64{a.ID}}})
	if err != nil || res.Reasons["robots_disallowed"] != 1 {
		t.Fatalf("a new bulk reads the site again: %+v %v", res, err)
	}
}
