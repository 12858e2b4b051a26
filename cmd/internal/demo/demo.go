// Package demo generates crmq's demo CRM data: a deterministic set of
// accounts, contacts, leads, deals, activities and customer-success records,
// written through the same store upserts the API uses.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/crmq/crmq/store"
)

// Counts is how many rows the org holds per module after seeding.
type Counts = store.RowCounts

// batchRows is the most rows one upsert carries, the API's batch limit.
const batchRows = store.MaxBatchRows

// Seed writes the demo data into the org and returns its row counts.
//
// The data depend only on now's UTC day: the same day gives the same rows,
// and seeding again upserts the same records, so counts and row contents do
// not change. Histories are back-filled: each contact, lead and deal is
// written once per step of its picklist's history with changed_at in the
// past, ending at its current value. Seeding again replays those steps; the
// store records a replayed change once, but while the seed runs a record
// briefly shows an older value, and updated_at of records with a history
// moves. Seed is for demo and test orgs, not for an org in use.
func Seed(ctx context.Context, db *store.DB, orgID int64, now time.Time) (Counts, error) {
	start := time.Now()
	g := newGenerator(now)
	g.generate()
	for _, s := range g.steps {
		for lo := 0; lo < len(s.rows); lo += batchRows {
			hi := min(lo+batchRows, len(s.rows))
			if err := write(ctx, db, orgID, s.module, s.rows[lo:hi]); err != nil {
				return Counts{}, err
			}
		}
	}
	counts, err := db.CountRows(ctx, orgID)
	if err != nil {
		return Counts{}, fmt.Errorf("demo seed: %w", err)
	}
	slog.InfoContext(ctx, "demo data seeded", "org_id", orgID, "day", g.day.Format(time.DateOnly),
		"rows_written", g.written(), "field_history", counts.FieldHistory, "duration", time.Since(start))
	return counts, nil
}

func write(ctx context.Context, db *store.DB, orgID int64, module string, rows []row) error {
	batch := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("demo %s: %w", module, err)
		}
		batch[i] = b
	}
	res, err := db.UpsertRecords(ctx, orgID, module, batch)
	if err != nil {
		return fmt.Errorf("demo %s: %w", module, err)
	}
	if res.Failed > 0 {
		for _, r := range res.Rows {
			if r.Status == store.RowError {
				return fmt.Errorf("demo %s: %d rows refused, first %s: %s", module, res.Failed, r.ExternalID, r.Error)
			}
		}
	}
	return nil
}

// row is one input record as the API takes it.
type row map[string]any

// step is a set of rows of one module written together; a module's steps
// are written in order, so later steps see earlier ones.
type step struct {
	module string
	rows   []row
}

type generator struct {
	r     *rand.Rand
	day   time.Time
	steps []step

	products []string
	accounts []*account
	leads    []*person
	users    []string
	seq      map[string]int
}

type tier int

const (
	tierEmpty tier = iota
	tierSparse
	tierNormal
	tierRich
)

type account struct {
	id, name, domain, owner string
	tier                    tier
	contacts                []*person
	deals, cases            []string
	plans                   []*plan
}

// person is a contact (with an account) or a lead: someone whose signals
// get follow-ups.
type person struct {
	id, owner string
	lead      bool
	account   *account
}

// plan is a success plan and the records CS activities can point at.
type plan struct {
	id         string
	kpis       [][2]string // kpi, its objective
	challenges []string
	tasks      []string // playbook tasks of the plan's account
}

func newGenerator(now time.Time) *generator {
	g := &generator{
		r:   rand.New(rand.NewPCG(20240611, 4)),
		day: now.UTC().Truncate(24 * time.Hour),
		seq: map[string]int{},
	}
	for i := 1; i <= 12; i++ {
		g.users = append(g.users, fmt.Sprintf("user-%d", i))
	}
	return g
}

func (g *generator) generate() {
	g.genProducts()
	g.genAccounts()
	g.genContacts()
	g.genLeads()
	g.genDeals()
	g.genCases()
	g.genSuccess()
	g.genProjects()
	g.genActivities()
	g.genCustom()
}

func (g *generator) emit(module string, rows []row) {
	if len(rows) > 0 {
		g.steps = append(g.steps, step{module: module, rows: rows})
	}
}

func (g *generator) written() int {
	n := 0
	for _, s := range g.steps {
		n += len(s.rows)
	}
	return n
}

// tracked is a record whose picklist has a history: base holds every other
// field; values[i] took effect at times[i].
type tracked struct {
	base   row
	values []string
	times  []time.Time
}

// emitHistory writes each record once per history step, oldest first, so
// the store records the changes with their back-filled times.
func (g *generator) emitHistory(module, field string, recs []tracked) {
	for level := 0; ; level++ {
		var rows []row
		for _, t := range recs {
			if level >= len(t.values) {
				continue
			}
			r := make(row, len(t.base)+2)
			for k, v := range t.base {
				r[k] = v
			}
			r[field] = t.values[level]
			r["changed_at"] = ts(t.times[level])
			rows = append(rows, r)
		}
		if len(rows) == 0 {
			return
		}
		g.emit(module, rows)
	}
}

// id returns the next external id of a kind, e.g. "acc-0001".
func (g *generator) id(prefix string, width int) string {
	g.seq[prefix]++
	return fmt.Sprintf("%s-%0*d", prefix, width, g.seq[prefix])
}

func (g *generator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *generator) chance(p float64) bool { return g.r.Float64() < p }

// between returns a count in [lo, hi].
func (g *generator) between(lo, hi int) int { return lo + g.r.IntN(hi-lo+1) }

// ago returns a time between lo and hi days before the seed day.
func (g *generator) ago(loDays, hiDays float64) time.Time {
	d := loDays + g.r.Float64()*(hiDays-loDays)
	return g.day.Add(-time.Duration(d * float64(24*time.Hour))).Truncate(time.Minute)
}

// state makes a few records draft or incomplete; incomplete ones lose
// the fields named in drop.
func (g *generator) state(r row, drop ...string) {
	switch n := g.r.IntN(100); {
	case n < 2:
		r["state"] = "draft"
	case n < 4:
		r["state"] = "incomplete"
		for _, k := range drop {
			delete(r, k)
		}
	}
}

func ts(t time.Time) string   { return t.UTC().Format(time.RFC3339) }
func date(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// money rounds to cents, as a JSON number.
func money(v float64) json.Number {
	return json.Number(fmt.Sprintf("%.2f", v))
}
