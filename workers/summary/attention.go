package summary

import (
	"time"

	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/crm"
)

// What needs attention, computed before anything else a summary says: the
// customer signals nobody answered and how long they have waited, the days
// since the last touch, how long the record has sat in its status or
// stage, open pipeline resting on one contact or on no executive, overdue
// items and stalled deals; and, for accounts, the health verdict they add
// up to.

// Thresholds of the verdict.
const (
	unansweredAtRiskDays = 14 // an unanswered signal this old puts an account at risk
	touchWatchDays       = 30 // no touch for this long is worth watching
	touchAtRiskDays      = 60 // ... and this long puts it at risk
	stalledStageDays     = 30 // a deal this long in its stage with no activity in the window is stalled
	maxHealthReasons     = 3
)

// trackedField is the picklist whose current value a record sits in.
var trackedField = map[string]string{"leads": "lead_status", "deals": "stage", "contacts": "lifecycle_stage"}

func days(from, to time.Time) int { return int(startOfDay(to).Sub(startOfDay(from)).Hours() / 24) }

func attentionFigures(f map[string]any, g store.SummaryGraph, module string, today time.Time, ix activityIndex) {
	at := ix.at
	unansweredFigures(f, g, ix, module, today)
	if len(g.Activities) > 0 {
		newest := at[0]
		for _, t := range at {
			if t.After(newest) && !t.After(today) {
				newest = t
			}
		}
		f[crm.FigDaysSinceTouch] = max(0, days(newest, today))
	}
	if field, ok := trackedField[module]; ok {
		statusFigure(f, g, field, today)
	}
	switch module {
	case "accounts":
		accountAttention(f, g, at, today)
		health(f)
	case "deals":
		open := !stage(g.Subject).Closed()
		inStage, okS := f[crm.FigDaysInStage].(int)
		in, okW := f[crm.FigInWindow].(int)
		if total, _ := f[crm.FigActivitiesTotal].(int); !okW && total == 0 {
			in, okW = 0, true // no activity at all
			f[crm.FigWindowDays] = activityWindowDays
		}
		if open && okS && inStage >= stalledStageDays && okW && in == 0 {
			f[crm.FigStalled] = true
		}
	}
}

// unansweredFigures: a customer signal is answered by a follow-up strictly
// later in the same thread (the contact it is with; for an account, its
// activities without a contact form one thread), as the orphan state
// defines it (store/orphans.go). Signals dated after today are not
// counted.
func unansweredFigures(f map[string]any, g store.SummaryGraph, ix activityIndex, module string, today time.Time) {
	at := ix.at
	thread := func(a store.GraphRecord) string {
		if module == "accounts" {
			return text(a.Fields["contact"])
		}
		return ""
	}
	lastFollowUp := map[string]time.Time{}
	for i, a := range g.Activities {
		if ix.dir[i] == "follow_up" {
			if t := at[i]; t.After(lastFollowUp[thread(a)]) {
				lastFollowUp[thread(a)] = t
			}
		}
	}
	n := 0
	var oldest store.GraphRecord
	var oldestAt time.Time
	for i, a := range g.Activities {
		t := at[i]
		if ix.dir[i] != "signal" || t.After(today) || t.Before(lastFollowUp[thread(a)]) {
			continue
		}
		n++
		if oldestAt.IsZero() || t.Before(oldestAt) {
			oldest, oldestAt = a, t
		}
	}
	f[crm.FigUnanswered] = n
	if n > 0 {
		f[crm.FigOldestUnanswered] = map[string]any{
			"ref": Ref(oldest.Module, oldest.ID), "date": oldestAt.Format(time.DateOnly), "waiting_days": days(oldestAt, today),
		}
	}
}

// statusFigure: the tracked picklist's current value and since when, from
// its newest change to that value, else from the record's creation.
func statusFigure(f map[string]any, g store.SummaryGraph, field string, today time.Time) {
	value := text(g.Subject.Fields[field])
	if value == "" {
		return
	}
	var since time.Time
	for _, h := range g.History {
		if h.Field == field && h.NewValue != nil && *h.NewValue == value && h.ChangedAt.After(since) {
			since = h.ChangedAt
		}
	}
	if since.IsZero() {
		t, ok := when(g.Subject.Fields["created_at"])
		if !ok {
			return
		}
		since = t
	}
	f[crm.FigStatusSince] = map[string]any{
		"field": field, "value": value, "since": since.Format(time.DateOnly), "days": max(0, days(since, today)),
	}
}

// accountAttention: single-threading and stalled deals.
func accountAttention(f map[string]any, g store.SummaryGraph, at []time.Time, today time.Time) {
	contacts := byModule(g.Related, "contacts")
	exec := 0
	for _, c := range contacts {
		if crm.TitleSeniority(text(c.Fields["title"])).Executive() {
			exec++
		}
	}
	f[crm.FigContacts] = len(contacts)
	f[crm.FigExecContacts] = exec
	if open, _ := f[crm.FigOpenDeals].(int); open > 0 {
		switch {
		case len(contacts) == 0:
			f[crm.FigSingleThreaded] = "no contact"
		case len(contacts) == 1:
			f[crm.FigSingleThreaded] = "one contact"
		case exec == 0:
			f[crm.FigSingleThreaded] = "no executive"
		}
	}
	// A deal is stalled when it is open, older than the window and no
	// activity on it falls in the window.
	from := today.Add(-activityWindowDays * 24 * time.Hour)
	touched := map[string]bool{}
	for i, a := range g.Activities {
		if t := at[i]; t.After(from) && !t.After(today) {
			touched[text(a.Fields["deal"])] = true
		}
	}
	stalled := []any{}
	for _, d := range byModule(g.Related, "deals") {
		created, ok := when(d.Fields["created_at"])
		if stage(d).Closed() || touched[d.ID] || (ok && created.After(from)) {
			continue
		}
		stalled = append(stalled, Ref("deals", d.ID))
	}
	f[crm.FigStalledDeals] = stalled
	f[crm.FigWindowDays] = activityWindowDays
}

// health is the account's verdict and the figures behind it, weightiest
// first: at risk for an escalated case, a red project, a customer signal
// unanswered for two weeks or no touch for two months; watch for KPIs off
// track or blocked, overdue items, close dates passed, stalled deals,
// single-threaded pipeline, a falling trend, a newer unanswered signal or
// a month without a touch; healthy otherwise.
func health(f map[string]any) {
	num := func(k string) int { n, _ := f[k].(int); return n }
	wait := -1
	if o, ok := f[crm.FigOldestUnanswered].(map[string]any); ok {
		wait, _ = o["waiting_days"].(int)
	}
	touch, touched := f[crm.FigDaysSinceTouch].(int)
	stalled, _ := f[crm.FigStalledDeals].([]any)
	kpis, _ := f[crm.FigKPIsByStatus].(map[string]any)
	kpiRisk := 0
	for _, s := range []string{"Off Track", "Blocked"} {
		n, _ := kpis[s].(int)
		kpiRisk += n
	}
	atRisk := []struct {
		key string
		on  bool
	}{
		{crm.FigEscalatedCases, num(crm.FigEscalatedCases) > 0},
		{crm.FigOldestUnanswered, wait >= unansweredAtRiskDays},
		{crm.FigRedProjects, num(crm.FigRedProjects) > 0},
		{crm.FigDaysSinceTouch, touched && touch >= touchAtRiskDays},
	}
	watch := []struct {
		key string
		on  bool
	}{
		{crm.FigSingleThreaded, f[crm.FigSingleThreaded] != nil},
		{crm.FigKPIsByStatus, kpiRisk > 0},
		{crm.FigPastCloseDeals, num(crm.FigPastCloseDeals) > 0},
		{crm.FigOverdueObjectives, num(crm.FigOverdueObjectives) > 0},
		{crm.FigOverdueTasks, num(crm.FigOverdueTasks) > 0},
		{crm.FigStalledDeals, len(stalled) > 0},
		{crm.FigOldestUnanswered, wait >= 0 && wait < unansweredAtRiskDays},
		{crm.FigTrend, f[crm.FigTrend] == crm.TrendFalling},
		{crm.FigDaysSinceTouch, touched && touch >= touchWatchDays && touch < touchAtRiskDays},
	}
	var reasons []any
	verdict := crm.HealthHealthy
	for _, r := range atRisk {
		if r.on && len(reasons) < maxHealthReasons {
			reasons = append(reasons, r.key)
			verdict = crm.HealthAtRisk
		}
	}
	for _, r := range watch {
		if r.on && len(reasons) < maxHealthReasons {
			reasons = append(reasons, r.key)
			if verdict == crm.HealthHealthy {
				verdict = crm.HealthWatch
			}
		}
	}
	f[crm.FigHealth] = verdict
	if reasons == nil {
		reasons = []any{}
	}
	f[crm.FigHealthReasons] = reasons
}
