package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/enrich/extract"
	"github.com/crmq/crmq/workers/enrich/fetch"
)

// Reasons a record is not enriched, besides the fetch reasons.
const (
	ReasonNoWebsite    = "no_website"
	ReasonNothingFound = "nothing_found"
)

// Enricher is what both handlers share: the store, the crawler and a clock.
type Enricher struct {
	Store   *store.DB
	Crawler Crawler
	Now     func() time.Time
	Log     *slog.Logger
	// ContactPorts names a port per scheme for the websites taken from
	// the contacts' email domain (tests serve them on loopback ports);
	// nil: the schemes' own.
	ContactPorts map[string]string
}

// outcome is one record's enrichment before it is stored, and whether a
// failure may pass if tried again.
type outcome struct {
	e         store.Enrichment
	transient bool
	err       error // the crawl's error, for the job's message
}

// enrich crawls one account and builds its proposal per field. Only the
// store's failures and a cancelled context are returned as errors; a
// site's failure is the outcome's reason.
func (en Enricher) enrich(ctx context.Context, orgID, accountID int64, id, jobID, mode string, fields []string) (outcome, error) {
	t, err := en.Store.EnrichTarget(ctx, orgID, accountID)
	if err != nil {
		return outcome{}, err
	}
	o := outcome{e: store.Enrichment{ID: id, JobID: jobID, AccountRowID: accountID, Account: t.ExternalID, Mode: mode,
		State: "succeeded", Fields: fields, CreatedAt: en.Now(), Proposals: []store.EnrichProposal{}}}
	fail := func(reason, detail string) {
		o.e.State, o.e.Reason = "failed", &reason
		if detail != "" {
			o.e.Detail = &detail
		}
	}
	website, source := t.Website, "account"
	var fromContacts *store.EnrichProposal
	if strings.TrimSpace(website) == "" {
		p, err := en.websiteFromContacts(ctx, orgID, accountID)
		if err != nil {
			return outcome{}, err
		}
		if p == nil {
			fail(ReasonNoWebsite, "the account has no website, and no contact has an email address at a company domain")
			return o, nil
		}
		fromContacts, source = p, "contacts"
	}
	var site Site
	if fromContacts != nil {
		site, website, err = en.crawlContactSite(ctx, orgID, fromContacts)
	} else {
		site, err = en.Crawler.Crawl(ctx, orgID, website)
	}
	o.e.Website, o.e.WebsiteSource = &website, &source
	if ctx.Err() != nil {
		return outcome{}, ctx.Err()
	}
	if b, jerr := json.Marshal(siteSummary{Home: site.Home, Pages: site.Pages, Skipped: site.Skipped, Technologies: site.Technologies}); jerr == nil && site.Home != "" {
		o.e.Site = b
	}
	switch {
	case errors.Is(err, ErrNothingFound):
		fail(ReasonNothingFound, "the site was read but gave no value for any field")
	case err != nil:
		reason := string(fetch.ReasonOf(err))
		if reason == "" {
			reason = string(fetch.ReasonUnreachable)
		}
		fail(reason, err.Error())
		o.transient, o.err = fetch.IsTransient(err), err
		if fromContacts != nil { // the website stays proposed, with its evidence
			o.e.Proposals = append(o.e.Proposals, *fromContacts)
		}
		return o, nil
	}
	for _, f := range fields {
		p := store.EnrichProposal{Field: f, Current: t.Values[f]}
		if b, ok := site.Best[f]; ok {
			p.Proposed, p.Found, p.Source, p.URL, p.Confidence, p.Evidence = b.Value, true, b.Source, b.URL, b.Confidence, b.Evidence
		}
		if f == extract.Website && fromContacts != nil {
			p = *fromContacts
		}
		o.e.Proposals = append(o.e.Proposals, p)
	}
	if fromContacts != nil && !slices.Contains(fields, extract.Website) {
		o.e.Proposals = append(o.e.Proposals, *fromContacts)
	}
	if o.e.State == "succeeded" && !slices.ContainsFunc(o.e.Proposals, func(p store.EnrichProposal) bool { return p.Found }) {
		fail(ReasonNothingFound, "the site gave no value for the org's enrichment fields")
	}
	return o, nil
}

// siteSummary is what an enrichment keeps of its crawl.
type siteSummary struct {
	Home         string               `json:"home"`
	Pages        []string             `json:"pages"`
	Skipped      []string             `json:"skipped,omitempty"`
	Technologies []extract.Technology `json:"technologies"`
}

// crawlContactSite crawls a domain taken from the contacts at
// https://domain/, then, when that does not answer (unreachable or
// timeout), at http://domain/. The website proposal names the address
// that answered, and its evidence says which were tried.
func (en Enricher) crawlContactSite(ctx context.Context, orgID int64, p *store.EnrichProposal) (Site, string, error) {
	domain := p.Proposed.(string)
	var notes []string
	var site Site
	var err error
	for _, scheme := range []string{"https", "http"} {
		website := en.contactSite(scheme, domain)
		site, err = en.Crawler.Crawl(ctx, orgID, website)
		if r := fetch.ReasonOf(err); err != nil && ctx.Err() == nil && (r == fetch.ReasonUnreachable || r == fetch.ReasonTimeout) {
			notes = append(notes, fmt.Sprintf("%s did not answer (%s)", website, r))
			continue
		}
		if err == nil || fetch.ReasonOf(err) == fetch.ReasonRobots || errors.Is(err, ErrNothingFound) {
			notes = append(notes, website+" answered")
		}
		p.Proposed, p.Evidence = website, p.Evidence+"; "+strings.Join(notes, ", ")
		return site, website, err
	}
	// Neither answered: the https address stays proposed.
	website := en.contactSite("https", domain)
	p.Proposed, p.Evidence = website, p.Evidence+"; "+strings.Join(notes, ", ")
	return site, website, err
}

func (en Enricher) contactSite(scheme, domain string) string {
	if port := en.ContactPorts[scheme]; port != "" {
		return scheme + "://" + net.JoinHostPort(domain, port) + "/"
	}
	return scheme + "://" + domain + "/"
}

// websiteFromContacts proposes the domain most common among the account's
// contacts' email addresses, free-mail providers left out; its Proposed
// value is the bare domain until crawlContactSite names the address that
// answered.
func (en Enricher) websiteFromContacts(ctx context.Context, orgID, accountID int64) (*store.EnrichProposal, error) {
	domains, err := en.Store.ContactEmailDomains(ctx, orgID, accountID)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, d := range domains {
		total += d.Contacts
	}
	for _, d := range domains {
		if FreeMail[d.Domain] || !plausibleDomain(d.Domain) {
			continue
		}
		return &store.EnrichProposal{Field: extract.Website, Proposed: d.Domain, Found: true,
			Source: extract.SourceContacts, Confidence: extract.Confidence[extract.SourceContacts],
			Evidence: fmt.Sprintf("%d of the account's %d contacts with an email address use @%s", d.Contacts, total, d.Domain)}, nil
	}
	return nil, nil
}

// plausibleDomain: letters, digits, hyphens and dots, with a dot, not an
// address literal.
func plausibleDomain(d string) bool {
	if !strings.Contains(d, ".") || net.ParseIP(strings.Trim(d, "[]")) != nil || len(d) > 253 {
		return false
	}
	for _, r := range d {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// FreeMail are email domains anyone can sign up at: they say nothing of
// the company.
var FreeMail = map[string]bool{}

func init() {
	for _, d := range strings.Fields(`gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk hotmail.fr live.com
		msn.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de ymail.com aol.com icloud.com me.com mac.com proton.me
		protonmail.com pm.me gmx.com gmx.de gmx.net web.de mail.com yandex.com yandex.ru mail.ru zoho.com zohomail.com
		fastmail.com tutanota.com tuta.io hey.com qq.com 163.com 126.com sina.com naver.com orange.fr free.fr laposte.net
		libero.it virgilio.it t-online.de btinternet.com comcast.net verizon.net att.net sbcglobal.net rediffmail.com`) {
		FreeMail[d] = true
	}
}

// Record is the enrich:record task: one account's proposal, nothing
// written to the account; or, for a bulk's child (the payload names its
// bulk), one record of the bulk (see child).
type Record struct {
	Enricher
	Queue jobs.TaskEnqueuer // enqueues a bulk's next children; asynq's Client
}

// Run implements workers.Handler. A site that failed for good (refused,
// robots, nothing found, no website) fails the job at once with its
// reason; an unreachable or silent one is retried with backoff. Either
// way the enrichment row says why.
func (h Record) Run(ctx context.Context, job workers.Job[jobs.EnrichRecordPayload]) (jobs.EnrichRecordResult, error) {
	p := job.Payload
	if p.Bulk != "" {
		return h.child(ctx, job)
	}
	settings, err := h.Store.EnrichmentSettings(ctx, p.OrgID)
	if err != nil {
		return jobs.EnrichRecordResult{}, err
	}
	o, err := h.enrich(ctx, p.OrgID, p.AccountID, job.ID, job.ID, "single", settings.Fields)
	if errors.Is(err, store.ErrNotFound) {
		if err := h.refund(ctx, job, store.EnrichReasonDeleted); err != nil {
			return jobs.EnrichRecordResult{}, err
		}
		return jobs.EnrichRecordResult{}, workers.Permanent(permanent(fmt.Sprintf("account %s was deleted before it was enriched", p.Account)))
	}
	if err != nil {
		return jobs.EnrichRecordResult{}, err
	}
	if err := h.Store.SaveEnrichment(ctx, p.OrgID, o.e); err != nil {
		return jobs.EnrichRecordResult{}, err
	}
	res := jobs.EnrichRecordResult{EnrichmentID: o.e.ID, Account: o.e.Account, State: o.e.State, Found: []string{}}
	for _, pr := range o.e.Proposals {
		if pr.Found {
			res.Found = append(res.Found, pr.Field)
		}
	}
	if o.e.State == "failed" {
		msg := *o.e.Reason
		if o.e.Detail != nil {
			msg += ": " + *o.e.Detail
		}
		res.Reason = *o.e.Reason
		if o.transient && !lastAttempt(ctx) {
			return res, errors.New(msg)
		}
		// Failed for good: the record goes back to the org's day.
		if err := h.refund(ctx, job, *o.e.Reason); err != nil {
			return res, err
		}
		if o.transient {
			return res, errors.New(msg)
		}
		return res, workers.Permanent(permanent(msg))
	}
	return res, nil
}

// refund gives a single enrichment that failed for good back to the
// org's day, once per job however often it is tried.
func (h Record) refund(ctx context.Context, job workers.Job[jobs.EnrichRecordPayload], reason string) error {
	_, err := h.Store.RefundEnrichment(ctx, job.ID, job.Payload.OrgID, jobs.QuotaDayOf(job.Payload.QuotaDay, h.Now()), reason)
	return err
}

// permanent is a record failure that will come again however often it
// is tried.
type permanent string

func (p permanent) Error() string   { return string(p) }
func (p permanent) Permanent() bool { return true }
