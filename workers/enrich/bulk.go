package enrich

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
)

// DefaultBulkConcurrency is how many records of one bulk enrichment are
// crawled at once (the fetcher's global cap and per-host turns apply on
// top).
const DefaultBulkConcurrency = 8

// Bulk is the enrich:bulk task: each record is enriched as a single one
// is, then only its empty fields are written (the seed: bulk does not ask
// and never overwrites). Every record's proposals stay readable.
type Bulk struct {
	Enricher
	Concurrency int
}

// Run implements workers.Handler. Records run a bounded number at a time;
// progress is the share of records done. A retried task keeps the records
// its earlier attempt finished.
func (h Bulk) Run(ctx context.Context, job workers.Job[jobs.EnrichBulkPayload]) (jobs.EnrichBulkResult, error) {
	p := job.Payload
	settings, err := h.Store.EnrichmentSettings(ctx, p.OrgID)
	if err != nil {
		return jobs.EnrichBulkResult{}, err
	}
	done, err := h.Store.JobEnrichments(ctx, p.OrgID, job.ID)
	if err != nil {
		return jobs.EnrichBulkResult{}, err
	}
	byAccount := map[int64]store.Enrichment{}
	for _, e := range done {
		byAccount[e.AccountRowID] = e
	}
	n := h.Concurrency
	if n <= 0 {
		n = DefaultBulkConcurrency
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu       sync.Mutex
		finished = len(byAccount)
		lastPct  = -1
		wg       sync.WaitGroup
		slots    = make(chan struct{}, n)
	)
	report := func() {
		pct := finished * 100 / len(p.AccountIDs)
		if pct == lastPct {
			return
		}
		lastPct = pct
		if err := job.Progress(ctx, pct); err != nil {
			cancel(err)
		}
	}
	mu.Lock()
	report()
	mu.Unlock()
	var todo []int64 // decided before any goroutine writes byAccount
	for _, id := range p.AccountIDs {
		if _, ok := byAccount[id]; !ok {
			todo = append(todo, id)
		}
	}
	for _, id := range todo {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			e, err := h.one(ctx, p.OrgID, id, job.ID, settings.Fields)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				cancel(err)
				return
			}
			byAccount[id] = e
			finished++
			report()
		})
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return jobs.EnrichBulkResult{}, cause
	}
	if err := ctx.Err(); err != nil {
		return jobs.EnrichBulkResult{}, err
	}
	res := summarise(p.AccountIDs, byAccount)
	if err := h.Store.SaveBulkHistory(ctx, p.OrgID, job.ID, p.UserID, res.Enriched, h.Now()); err != nil {
		return res, err
	}
	return res, nil
}

// one enriches a record, writes its found values into its empty fields
// and stores the enrichment with the fields written.
func (h Bulk) one(ctx context.Context, orgID, accountID int64, jobID string, fields []string) (store.Enrichment, error) {
	id := jobID + "." + strconv.FormatInt(accountID, 10)
	o, err := h.enrich(ctx, orgID, accountID, id, jobID, "bulk", fields)
	if errors.Is(err, store.ErrNotFound) { // deleted since the request
		return store.Enrichment{}, nil
	}
	if err != nil {
		return store.Enrichment{}, err
	}
	if o.e.State == "succeeded" {
		var allowed []store.EnrichProposal
		for _, p := range o.e.Proposals {
			if p.Found && contains(fields, p.Field) {
				allowed = append(allowed, p)
			}
		}
		if o.e.Written, err = h.Store.WriteEmptyFields(ctx, orgID, accountID, allowed, h.Now()); err != nil {
			return store.Enrichment{}, fmt.Errorf("account %d: %w", accountID, err)
		}
	}
	if err := h.Store.SaveEnrichment(ctx, orgID, o.e); err != nil {
		return store.Enrichment{}, err
	}
	return o.e, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// summarise counts a bulk's records, in the payload's order.
func summarise(ids []int64, byAccount map[int64]store.Enrichment) jobs.EnrichBulkResult {
	res := jobs.EnrichBulkResult{Records: len(ids), Reasons: map[string]int{}, Failures: []jobs.EnrichFailure{}}
	for _, id := range ids {
		e, ok := byAccount[id]
		if !ok || e.ID == "" {
			res.Failed++
			res.Reasons["account_deleted"]++
			res.Failures = append(res.Failures, jobs.EnrichFailure{Account: strconv.FormatInt(id, 10), Reason: "account_deleted"})
			continue
		}
		if e.State == "failed" {
			res.Failed++
			reason := *e.Reason
			res.Reasons[reason]++
			f := jobs.EnrichFailure{Account: e.Account, Reason: reason}
			if e.Detail != nil {
				f.Detail = *e.Detail
			}
			res.Failures = append(res.Failures, f)
			continue
		}
		res.Succeeded++
		if len(e.Written) > 0 {
			res.Enriched++
			res.FieldsWritten += len(e.Written)
		}
	}
	sort.SliceStable(res.Failures, func(i, j int) bool { return res.Failures[i].Account < res.Failures[j].Account })
	return res
}
