package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/crmq/crmq/store"
)

// Fixture rows for the interactions and orphan tests, written with plain
// SQL until the ingestion store exists; only these tests use them.

func fixtureOrg(t *testing.T, db *store.DB, name string) int64 {
	t.Helper()
	o, err := db.CreateOrg(context.Background(), name)
	if err != nil {
		t.Fatalf("org %s: %v", name, err)
	}
	return o.ID
}

// fixtureRecord inserts a lead or contact and returns its id.
func fixtureRecord(t *testing.T, db *store.DB, orgID int64, module, externalID string) int64 {
	t.Helper()
	var id int64
	q := `INSERT INTO leads (org_id, external_id) VALUES ($1, $2) RETURNING id`
	if module == "contacts" {
		q = `INSERT INTO contacts (org_id, external_id) VALUES ($1, $2) RETURNING id`
	}
	if err := db.GetContext(context.Background(), &id, q, orgID, externalID); err != nil {
		t.Fatalf("%s %s: %v", module, externalID, err)
	}
	return id
}

// fixtureActivity is one activity; zero values of the optional fields are
// stored as NULL (impressions: -1 would be invalid anyway, so 0 means NULL
// too), State "" as active, Kind "" as note.
type fixtureActivity struct {
	ID        string
	Lead      int64
	Contact   int64
	Direction string // signal | follow_up
	Medium    string
	Kind      string
	State     string
	Status    string
	User      string
	Subject   string
	At        time.Time
	Questions int
	TimeSpent int
	Pages     int
}

// fixtureActivities inserts activities in one statement.
func fixtureActivities(t *testing.T, db *store.DB, orgID int64, acts []fixtureActivity) {
	t.Helper()
	n := len(acts)
	var (
		ids, dirs, mediums, kinds, states, statuses, users, subjects, ats = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		leads, contacts, questions, spent, pages = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, a := range acts {
		ids[i], dirs[i], mediums[i], users[i], subjects[i], statuses[i] = a.ID, a.Direction, a.Medium, a.User, a.Subject, a.Status
		kinds[i], states[i] = a.Kind, a.State
		if kinds[i] == "" {
			kinds[i] = "note"
		}
		if states[i] == "" {
			states[i] = "active"
		}
		ats[i] = a.At.UTC().Format(time.RFC3339Nano)
		leads[i], contacts[i] = a.Lead, a.Contact
		questions[i], spent[i], pages[i] = int64(a.Questions), int64(a.TimeSpent), int64(a.Pages)
	}
	_, err := db.ExecContext(context.Background(), `
		INSERT INTO activities (org_id, external_id, direction, medium, kind, state, status, user_id, subject,
		                        occurred_at, lead_id, contact_id, questions_answered, time_spent_seconds, pages_visited)
		SELECT $1, id, dir, medium, kind, state, nullif(status, ''), nullif(usr, ''), nullif(subject, ''),
		       at::timestamptz, nullif(lead, 0), nullif(contact, 0), nullif(q, 0), nullif(ts, 0), nullif(pv, 0)
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
		            $10::text[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[])
		     AS x(id, dir, medium, kind, state, status, usr, subject, at, lead, contact, q, ts, pv)`,
		orgID, pq.Array(ids), pq.Array(dirs), pq.Array(mediums), pq.Array(kinds), pq.Array(states), pq.Array(statuses),
		pq.Array(users), pq.Array(subjects), pq.Array(ats), pq.Array(leads), pq.Array(contacts),
		pq.Array(questions), pq.Array(spent), pq.Array(pages))
	if err != nil {
		t.Fatalf("activities: %v", err)
	}
}

// fixtureMilestone records a change of a tracked field; old "" is NULL.
func fixtureMilestone(t *testing.T, db *store.DB, orgID int64, module string, recordID int64, field, old, new string, at time.Time) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `
		INSERT INTO field_history (org_id, module, record_id, field, old_value, new_value, changed_at)
		VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7)`, orgID, module, recordID, field, old, new, at)
	if err != nil {
		t.Fatalf("field history: %v", err)
	}
}
