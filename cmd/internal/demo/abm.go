package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
	"github.com/crmq/crmq/store/criteria"
	"github.com/crmq/crmq/workers"
	"github.com/crmq/crmq/workers/segment"
)

// ABMResult is what SeedABM set up.
type ABMResult struct {
	Refresh  jobs.SegmentRefreshResult
	Segments []store.Segment
}

// demoSegments are two segments in the spirit of seed 004's Zylker case:
// healthcare accounts whose purchases lapse, and large accounts to win
// back.
func demoSegments() []store.SegmentInput {
	c := func(pattern string, conds ...criteria.Condition) *criteria.Criteria {
		return &criteria.Criteria{Conditions: conds, Pattern: pattern}
	}
	cond := func(field string, op criteria.Op, value string) criteria.Condition {
		return criteria.Condition{Field: field, Op: op, Value: json.RawMessage(value)}
	}
	lapsing := `["At risk", "Can't lose them", "Hibernating"]`
	return []store.SegmentInput{
		{Name: "Healthcare accounts at risk", Description: "Healthcare customers whose purchases are lapsing: the renewal campaign",
			Criteria: c("", cond("label.rfm", criteria.In, lapsing), cond("industry", criteria.Equals, `"Healthcare"`))},
		{Name: "Large accounts to win back", Description: "Enterprise and mid-market customers that stopped buying",
			Criteria: c("(1 OR 2) AND 3", cond("label.firmographics", criteria.Equals, `"Enterprise"`),
				cond("label.firmographics", criteria.Equals, `"Mid-market"`), cond("label.rfm", criteria.In, `["At risk", "Can't lose them", "Hibernating", "Lost"]`))},
	}
}

// SeedABM configures ABM for the demo org as a user would through the API:
// the default mapping, global criteria "country is not empty", automatic
// RFM and firmographics active, ABM configured; it then runs the first
// refresh in-process (so segments show at once, without a worker) and
// creates or updates the two demo segments. Seeding again changes nothing
// a user would see.
func SeedABM(ctx context.Context, db *store.DB, orgID int64, now time.Time) (ABMResult, error) {
	clock := func() time.Time { return now }
	if err := db.SetGlobalCriteria(ctx, orgID, criteria.Criteria{Conditions: []criteria.Condition{{Field: "country", Op: criteria.IsNotEmpty}}}); err != nil {
		return ABMResult{}, fmt.Errorf("demo global criteria: %w", err)
	}
	setup := segment.Setup{DB: db, Now: clock} // no Enqueuer: the refresh runs below
	views, err := setup.Views(ctx, orgID)
	if err != nil {
		return ABMResult{}, err
	}
	if err := seedVoCCompetitors(ctx, db, setup, orgID, views); err != nil {
		return ABMResult{}, err
	}
	for _, v := range views {
		if v.State == store.TechniqueInactive {
			if _, _, err := setup.Activate(ctx, orgID, v.Technique); err != nil {
				return ABMResult{}, fmt.Errorf("demo activate %s: %w", v.Technique, err)
			}
		}
	}
	if err := db.MarkABMConfigured(ctx, orgID, now); err != nil {
		return ABMResult{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ref := segment.Refresher{Store: db, Segments: db, Now: clock, Log: quiet}
	var res ABMResult
	if res.Refresh, err = ref.Run(ctx, workers.Job[jobs.SegmentRefreshPayload]{ID: "demo-seed-" + now.UTC().Format(time.DateOnly),
		Payload: jobs.SegmentRefreshPayload{OrgID: orgID}}); err != nil {
		return ABMResult{}, fmt.Errorf("demo refresh: %w", err)
	}
	existing, err := db.Segments(ctx, orgID)
	if err != nil {
		return ABMResult{}, err
	}
	byName := map[string]int64{}
	for _, s := range existing {
		byName[s.Name] = s.ID
	}
	for _, in := range demoSegments() {
		var s store.Segment
		if id, ok := byName[in.Name]; ok {
			s, err = db.UpdateSegment(ctx, orgID, id, in, now)
		} else {
			s, err = db.CreateSegment(ctx, orgID, in, now)
		}
		if err != nil {
			return ABMResult{}, fmt.Errorf("demo segment %q: %w", in.Name, err)
		}
		res.Segments = append(res.Segments, s)
	}
	return res, nil
}

// seedVoCCompetitors makes the records of the demo's custom_competitors
// module the competitor list of VoC's settings (seed 004: competitors are
// chosen, not typed), when the list differs.
func seedVoCCompetitors(ctx context.Context, db *store.DB, setup segment.Setup, orgID int64, views []segment.View) error {
	var names []string
	cursor := ""
	for {
		page, err := db.ListRecords(ctx, orgID, "custom_competitors", store.MaxPageSize, cursor)
		if err != nil {
			return fmt.Errorf("demo competitors: %w", err)
		}
		for _, r := range page.Records {
			if name, ok := r["name"].(string); ok && name != "" && r["state"] == "active" {
				names = append(names, name)
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	for _, v := range views {
		if v.Technique != store.TechniqueVoC {
			continue
		}
		var s segment.VoC
		if err := json.Unmarshal(v.Settings, &s); err != nil {
			return fmt.Errorf("demo voc settings: %w", err)
		}
		if slices.Equal(s.Competitors, names) {
			return nil
		}
		s.Competitors = names
		raw, err := json.Marshal(s)
		if err != nil {
			return err
		}
		v.Settings = raw
		if _, _, err := setup.Put(ctx, orgID, store.TechniqueVoC, v); err != nil {
			return fmt.Errorf("demo voc competitors: %w", err)
		}
	}
	return nil
}
