package enrich_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

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
	peak := 0 // child jobs queued or running at once
	j := e.waitFinal(t, adm.Job.ID, func(p int) {
		if len(progress) == 0 || progress[len(progress)-1] != p {
			progress = append(progress, p)
		}
		// Children queued or at work: their job is open and their record
		// has no outcome yet (a child that recorded its outcome is only
		// moving the window and closing its row).
		var open int
		if err := e.db.GetContext(ctx, &open, `SELECT count(*) FROM jobs j JOIN enrich_bulk_records r ON j.id = r.job_id || '.' || r.account_id
			WHERE r.job_id = $1 AND r.state = 'pending' AND j.state NOT IN ('succeeded', 'failed', 'cancelled')`, adm.Job.ID); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, open)
	})
	if j.State != store.JobSucceeded || j.Progress != 100 || j.Attempts != 1 {
		t.Fatalf("job %+v", j)
	}
	// One child enrich:record job per record, on the low queue, never more
	// than the window (6) open at once.
	// The last child finishes the parent in its outcome's transaction;
	// its own job row closes just after.
	var children []store.Job
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		children = nil
		if err := e.db.SelectContext(ctx, &children, `SELECT id, type, queue, state, attempts FROM jobs WHERE id LIKE $1 || '.%'`, adm.Job.ID); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(children, func(c store.Job) bool { return !store.JobFinal(c.State) }) || time.Now().After(deadline) {
			break
		}
	}
	if len(children) != 30 || peak > 6 || peak < 2 {
		t.Fatalf("%d children, at most %d open at once (want 30 children, 2 to 6 at once)", len(children), peak)
	}
	for _, c := range children {
		if c.Type != jobs.TypeEnrichRecord || c.Queue != "low" || c.State != store.JobSucceeded {
			t.Errorf("child %+v", c)
		}
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
	if res.Records != 30 || res.Succeeded != 20 || res.Failed != 10 || res.Enriched != 19 || res.Refunded != 10 || fmt.Sprint(res.Reasons) != fmt.Sprint(wantReasons) {
		t.Fatalf("result %+v", res)
	}
	// The 10 failed records were given back to the day.
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 20 {
		t.Fatalf("used %d after the bulk, want 20 of the 30 counted", used)
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

// queued lists the child tasks waiting on the low queue.
func (e *env) queued(t *testing.T) []string {
	t.Helper()
	insp := asynq.NewInspector(e.q.Opt)
	defer insp.Close()
	tasks, err := insp.ListPendingTasks("low", asynq.PageSize(1000))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ti := range tasks {
		if ti.Type == jobs.TypeEnrichRecord {
			ids = append(ids, ti.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// bulkOf admits a bulk of the accounts (counted against today) without
// running it: its parent and children are run by the test.
func (e *env) bulkOf(t *testing.T, ext ...string) (jobs.EnrichAdmission, jobs.EnrichBulkPayload) {
	t.Helper()
	adm, err := e.enq.AdmitEnrich(context.Background(), jobs.EnrichRequest{OrgID: e.org, UserID: "user-1", Bulk: true, AccountIDs: ext, Limit: 5000, Now: today})
	if err != nil {
		t.Fatal(err)
	}
	p, err := jobs.Decode[jobs.EnrichBulkPayload](adm.Job.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return adm, p
}

func (e *env) runChild(ctx context.Context, q jobs.TaskEnqueuer, bulk string, p jobs.EnrichBulkPayload, accountID int64) (jobs.EnrichRecordResult, error) {
	return enrich.Record{Enricher: e.en, Queue: q}.Run(ctx, workers.Job[jobs.EnrichRecordPayload]{ID: store.EnrichChildID(bulk, accountID),
		Payload: jobs.EnrichRecordPayload{OrgID: p.OrgID, AccountID: accountID, Bulk: bulk, QuotaDay: p.QuotaDay, UserID: p.UserID}})
}

// A parent run again (a crash after it enqueued, or the reconciler)
// enqueues no child twice; a child run again after its outcome was
// recorded neither crawls again nor counts twice, and only moves the
// window; the window never holds more than the bulk's concurrency.
func TestARetriedParentOrChildEnqueuesAndCountsNothingTwice(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var rows, ext []string
	for i := range 6 {
		ext = append(ext, fmt.Sprintf("nw-%d", i))
		rows = append(rows, fmt.Sprintf(`{"external_id": %q, "name": "NW", "website": %q}`, ext[i], e.urls["northwind"]))
	}
	e.ingest(t, "accounts", rows...)
	adm, p := e.bulkOf(t, ext...)
	q := e.q.Client
	parent := enrich.Bulk{Enricher: e.en, Queue: q, Concurrency: 2}
	job := workers.Job[jobs.EnrichBulkPayload]{ID: adm.Job.ID, Payload: p}
	for range 3 {
		if _, err := parent.Run(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{store.EnrichChildID(adm.Job.ID, p.AccountIDs[0]), store.EnrichChildID(adm.Job.ID, p.AccountIDs[1])}
	slices.Sort(want)
	if got := e.queued(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after three parent runs the queue holds %v, want the first window %v", got, want)
	}

	first := p.AccountIDs[0]
	res, err := e.runChild(ctx, q, adm.Job.ID, p, first)
	if err != nil || res.State != "succeeded" {
		t.Fatalf("child: %+v %v", res, err)
	}
	if got := e.queued(t); len(got) != 3 || !slices.Contains(got, store.EnrichChildID(adm.Job.ID, p.AccountIDs[2])) {
		t.Fatalf("the window moved to %v", got)
	}
	// The site now refuses crawlers: a child run again does not read it.
	e.ingest(t, "accounts", fmt.Sprintf(`{"external_id": "nw-0", "name": "NW", "website": %q}`, e.urls["closed"]))
	for range 2 {
		if res, err := e.runChild(ctx, q, adm.Job.ID, p, first); err != nil || res.State != "succeeded" {
			t.Fatalf("child run again: %+v %v", res, err)
		}
	}
	b, err := e.db.GetEnrichBulk(ctx, adm.Job.ID)
	if err != nil || b.Done != 1 || b.Dispatched != 3 || len(e.queued(t)) != 3 {
		t.Fatalf("bulk %+v %v, queue %v", b, err, e.queued(t))
	}
	got, err := e.db.GetEnrichment(ctx, e.org, store.EnrichChildID(adm.Job.ID, first))
	if err != nil || got.State != "succeeded" || len(got.Written) == 0 {
		t.Fatalf("the first run's enrichment %+v %v", got, err)
	}
}

// Records that fail are given back to the org's day once each, however
// often and however concurrently their child runs; the parent job
// finishes once, with one history entry.
func TestFailedRecordsAreGivenBackOnceEvenUnderConcurrentRetries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, "accounts",
		fmt.Sprintf(`{"external_id": "ok", "name": "NW", "website": %q}`, e.urls["northwind"]),
		fmt.Sprintf(`{"external_id": "closed", "name": "Closed", "website": %q}`, e.urls["closed"]),
		`{"external_id": "none", "name": "No site"}`)
	adm, p := e.bulkOf(t, "ok", "closed", "none")
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 3 {
		t.Fatalf("used %d", used)
	}
	q := e.q.Client
	if _, err := (enrich.Bulk{Enricher: e.en, Queue: q, Concurrency: 3}).Run(ctx, workers.Job[jobs.EnrichBulkPayload]{ID: adm.Job.ID, Payload: p}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 6 {
		for _, a := range p.AccountIDs {
			wg.Go(func() {
				if _, err := e.runChild(ctx, q, adm.Job.ID, p, a); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 1 {
		t.Fatalf("used %d after the bulk, want 1 (two failed records given back once each)", used)
	}
	var refunds []string
	if err := e.db.SelectContext(ctx, &refunds, `SELECT reason FROM enrichment_refunds WHERE org_id = $1 ORDER BY reason`, e.org); err != nil || fmt.Sprint(refunds) != "[no_website robots_disallowed]" {
		t.Fatalf("refunds %v %v", refunds, err)
	}
	j, err := e.db.Job(ctx, e.org, adm.Job.ID)
	if err != nil || j.State != store.JobSucceeded || j.Progress != 100 || j.Result == nil {
		t.Fatalf("parent %+v %v", j, err)
	}
	var res jobs.EnrichBulkResult
	if err := json.Unmarshal(*j.Result, &res); err != nil || res.Succeeded != 1 || res.Failed != 2 || res.Refunded != 2 {
		t.Fatalf("result %+v %v", res, err)
	}
	h, err := e.db.EnrichmentHistory(ctx, e.org, 10, "")
	if err != nil || len(h.Entries) != 1 || *h.Entries[0].Records != 1 {
		t.Fatalf("history %+v %v", h.Entries, err)
	}
}

// A single enrichment that fails for good is given back once, however
// many of its copies run at once.
func TestAFailedSingleEnrichmentIsGivenBackOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, "accounts", fmt.Sprintf(`{"external_id": "closed", "name": "Closed", "website": %q}`, e.urls["closed"]),
		fmt.Sprintf(`{"external_id": "ok", "name": "NW", "website": %q}`, e.urls["northwind"]))
	var wg sync.WaitGroup
	for _, ext := range []string{"closed", "ok"} {
		adm, err := e.enq.AdmitEnrich(ctx, jobs.EnrichRequest{OrgID: e.org, AccountIDs: []string{ext}, Limit: 5000, Now: today})
		if err != nil {
			t.Fatal(err)
		}
		p, err := jobs.Decode[jobs.EnrichRecordPayload](adm.Job.Payload)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			wg.Go(func() {
				_, _ = enrich.Record{Enricher: e.en}.Run(ctx, workers.Job[jobs.EnrichRecordPayload]{ID: adm.Job.ID, Payload: p})
			})
		}
	}
	wg.Wait()
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 1 {
		t.Fatalf("used %d, want 1: the robots-disallowed one given back once, the enriched one kept", used)
	}
}

// A cancelled bulk ends at the next child that runs: its record and every
// record never enqueued end cancelled and are given back; a child already
// queued ends its own when it runs.
func TestACancelledBulkEndsItsRecordsAndGivesThemBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var rows, ext []string
	for i := range 4 {
		ext = append(ext, fmt.Sprintf("nw-%d", i))
		rows = append(rows, fmt.Sprintf(`{"external_id": %q, "name": "NW", "website": %q}`, ext[i], e.urls["northwind"]))
	}
	e.ingest(t, "accounts", rows...)
	adm, p := e.bulkOf(t, ext...)
	if _, err := (enrich.Bulk{Enricher: e.en, Queue: e.q.Client, Concurrency: 2}).Run(ctx, workers.Job[jobs.EnrichBulkPayload]{ID: adm.Job.ID, Payload: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CancelJob(ctx, e.org, adm.Job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runChild(ctx, e.q.Client, adm.Job.ID, p, p.AccountIDs[0]); !errors.Is(err, workers.ErrCancelled) {
		t.Fatalf("first child: %v", err)
	}
	b, err := e.db.GetEnrichBulk(ctx, adm.Job.ID)
	if err != nil || b.Done != 3 || b.FinishedAt != nil {
		t.Fatalf("after the first child: %+v %v", b, err)
	}
	if _, err := e.runChild(ctx, e.q.Client, adm.Job.ID, p, p.AccountIDs[1]); !errors.Is(err, workers.ErrCancelled) {
		t.Fatalf("second child: %v", err)
	}
	res, err := e.db.EnrichBulkResultOf(ctx, adm.Job.ID)
	if err != nil || res.Failed != 4 || res.Reasons["cancelled"] != 4 || res.Refunded != 4 {
		t.Fatalf("result %+v %v", res, err)
	}
	if used, _ := e.db.EnrichmentUsage(ctx, e.org, today); used != 0 {
		t.Fatalf("used %d, want 0", used)
	}
	if j, _ := e.db.Job(ctx, e.org, adm.Job.ID); j.State != store.JobCancelled {
		t.Fatalf("parent %+v", j)
	}
	if n := len(e.queued(t)); n != 2 {
		t.Fatalf("%d children queued, want the first window of 2 only", n)
	}
}
