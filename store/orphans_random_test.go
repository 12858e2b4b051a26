package store_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crmq/crmq/store/storetest"
)

// TestRecomputeOrphansAgreesWithGo recomputes the documented definitions
// in plain Go over random data and compares every record.
func TestRecomputeOrphansAgreesWithGo(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.NewDB(t)
	org, other := fixtureOrg(t, db, "a"), fixtureOrg(t, db, "b")
	rng := rand.New(rand.NewPCG(2025, 3))
	now := day(61, 0)

	type rec struct {
		module string
		id     int64
	}
	var recs []rec
	for i := range 50 {
		module := "leads"
		if i%2 == 1 {
			module = "contacts"
		}
		recs = append(recs, rec{module, fixtureRecord(t, db, org, module, fmt.Sprintf("r%d", i))})
	}
	otherLead := fixtureRecord(t, db, other, "leads", "r0")

	// An hour grid over 60 days, so that instants collide now and then.
	var acts []fixtureActivity
	for i := range 2000 {
		r := recs[rng.IntN(45)] // the last five records get nothing
		a := fixtureActivity{ID: fmt.Sprintf("a%d", i), Medium: "email", Direction: "signal", At: day1.Add(time.Duration(rng.IntN(60*24)) * time.Hour)}
		if rng.IntN(100) < 45 {
			a.Direction = "follow_up"
		}
		if rng.IntN(10) == 0 {
			a.State = []string{"draft", "incomplete"}[rng.IntN(2)]
		}
		if r.module == "leads" {
			a.Lead = r.id
		} else {
			a.Contact = r.id
		}
		acts = append(acts, a)
	}
	fixtureActivities(t, db, org, acts)
	var noise []fixtureActivity
	for i := range 100 {
		noise = append(noise, fixtureActivity{ID: fmt.Sprintf("n%d", i), Lead: otherLead, Medium: "call",
			Direction: []string{"signal", "follow_up"}[i%2], At: day1.Add(time.Duration(rng.IntN(60*24*60)) * time.Minute)})
	}
	fixtureActivities(t, db, other, noise)

	// The definitions of store/orphans.go, record by record.
	type expect struct {
		openSince *time.Time
		gap       float64
	}
	want := map[rec]expect{}
	gapSum := map[string]float64{}
	gapN := map[string]int{}
	byRecord := map[rec][]fixtureActivity{} // lead and contact ids are separate sequences
	for _, a := range acts {
		if a.State != "" && a.State != "active" {
			continue
		}
		r := rec{"leads", a.Lead}
		if a.Contact != 0 {
			r = rec{"contacts", a.Contact}
		}
		byRecord[r] = append(byRecord[r], a)
	}
	ties := 0 // a signal and a follow-up at one instant: must not answer it
	for _, as := range byRecord {
		for _, s := range as {
			for _, f := range as {
				if s.Direction == "signal" && f.Direction == "follow_up" && s.At.Equal(f.At) {
					ties++
				}
			}
		}
	}
	if ties == 0 {
		t.Fatal("the random fixture has no same-instant signal and follow-up; change the seed")
	}
	for _, r := range recs {
		var e expect
		for _, s := range byRecord[r] {
			if s.Direction != "signal" {
				continue
			}
			var first *time.Time
			for _, f := range byRecord[r] {
				if f.Direction == "follow_up" && f.At.After(s.At) && (first == nil || f.At.Before(*first)) {
					first = &f.At
				}
			}
			if first != nil {
				gapSum[r.module] += first.Sub(s.At).Seconds()
				gapN[r.module]++
			} else if e.openSince == nil || s.At.Before(*e.openSince) {
				e.openSince = &s.At
			}
		}
		if e.openSince != nil {
			e.gap = now.Sub(*e.openSince).Seconds()
		}
		want[r] = e
	}

	for _, module := range []string{"leads", "contacts"} {
		run, err := db.RecomputeOrphans(ctx, org, module, now, "rand")
		if err != nil {
			t.Fatal(err)
		}
		avg := gapSum[module] / float64(gapN[module])
		if gapN[module] == 0 || !near(run.AverageGapSeconds, avg) || run.Records != 25 {
			t.Fatalf("%s run = %+v (average %v), want average %v over %d gaps, 25 records", module, run, ptr(run.AverageGapSeconds), avg, gapN[module])
		}
		orphans, open := 0, 0
		for _, r := range recs {
			if r.module != module {
				continue
			}
			s, err := db.OrphanStatus(ctx, org, module, r.id)
			if err != nil {
				t.Fatal(err)
			}
			e := want[r]
			if (e.openSince == nil) != (s.OpenSince == nil) || e.openSince != nil && (!e.openSince.Equal(*s.OpenSince) || !near(s.CurrentGapSeconds, e.gap)) {
				t.Errorf("%s %d: open since %v gap %v, want %v gap %v", module, r.id, s.OpenSince, ptr(s.CurrentGapSeconds), e.openSince, e.gap)
			}
			wantOrphan := e.openSince != nil && e.gap > avg
			if e.openSince != nil && math.Abs(e.gap-avg) < 1e-3 {
				wantOrphan = s.IsOrphan // a tie within float noise decides nothing here
			}
			if s.IsOrphan != wantOrphan {
				t.Errorf("%s %d: orphan %v, want %v (gap %v, average %v)", module, r.id, s.IsOrphan, wantOrphan, e.gap, avg)
			}
			if s.IsOrphan {
				orphans++
			}
			if e.openSince != nil {
				open++
			}
		}
		if run.Orphans != orphans {
			t.Errorf("%s run counts %d orphans, rows say %d", module, run.Orphans, orphans)
		}
		// The data must exercise both outcomes to mean anything.
		if orphans == 0 || orphans == open {
			t.Errorf("%s: %d orphans among %d open records; the fixture decides nothing", module, orphans, open)
		}
		t.Logf("%s: average %.0fs over %d gaps, %d open, %d orphan", module, avg, gapN[module], open, orphans)
	}
}
