package crm_test

import (
	"testing"

	"github.com/crmq/crmq/store/crm"
)

func TestStageClassifiesZohoStages(t *testing.T) {
	for _, c := range []struct {
		stage string
		want  crm.Outcome
	}{
		{"Closed Won", crm.Won},
		{"closed won", crm.Won},
		{"  CLOSED WON\t", crm.Won},
		{"\u00a0Closed Won\n", crm.Won},
		{"Closed Lost", crm.Lost},
		{"closed lost ", crm.Lost},
		{"Closed-Lost to Competition", crm.Lost},
		{"Closed - Other", crm.Lost},
		{"Closed", crm.Lost},
		{"Closed Won - Pending", crm.Lost}, // not the won name: another closing stage
		{"", crm.Open},
		{"   ", crm.Open},
		{"Qualification", crm.Open},
		{"Negotiation/Review", crm.Open},
		{"Won", crm.Open},
		{"Not closed", crm.Open},
		{"Close date set", crm.Open},
	} {
		t.Run(c.stage+" is "+c.want.String(), func(t *testing.T) {
			got := crm.Stage(c.stage)
			if got != c.want {
				t.Fatalf("Stage(%q) = %s, want %s", c.stage, got, c.want)
			}
			if got.Closed() != (c.want != crm.Open) {
				t.Fatalf("Stage(%q).Closed() = %v", c.stage, got.Closed())
			}
		})
	}
}

func TestDoneStatusesEndARecord(t *testing.T) {
	for _, s := range []string{"Done", "completed", " Complete ", "CLOSED", "Resolved", "Cancelled", "canceled", "Achieved"} {
		if !crm.Done(s) {
			t.Errorf("%q is not done", s)
		}
	}
	for _, s := range []string{"", "Open", "In Progress", "Escalated", "On Track", "Not Started", "Closing"} {
		if crm.Done(s) {
			t.Errorf("%q is done", s)
		}
	}
}

func TestCaseOpenAndEscalated(t *testing.T) {
	for _, c := range []struct {
		status, closedAt string
		open             bool
	}{
		{"Open", "", true},
		{"Escalated", "", true},
		{"Closed", "", false},
		{"Open", "2025-05-01T10:00:00Z", false},
		{"", " ", true},
	} {
		if got := crm.CaseOpen(c.status, c.closedAt); got != c.open {
			t.Errorf("CaseOpen(%q, %q) = %v, want %v", c.status, c.closedAt, got, c.open)
		}
	}
	if !crm.CaseEscalated(" escalated", false) || !crm.CaseEscalated("Open", true) || crm.CaseEscalated("Open", false) {
		t.Error("a case is escalated by its flag or its status, and only then")
	}
}

// The lists handed to SQL are normed, so lower(btrim(stage, Space)) = ANY
// compares like Stage does.
func TestStageListsAreNormed(t *testing.T) {
	for _, list := range [][]string{crm.WonStages(), crm.LostStages(), crm.DoneStatuses(), {crm.LostPrefix}} {
		for _, s := range list {
			if crm.Norm(s) != s || s == "" {
				t.Errorf("%q is not normed", s)
			}
		}
	}
	for _, s := range crm.WonStages() {
		if crm.Stage(s) != crm.Won {
			t.Errorf("won stage %q classified %s", s, crm.Stage(s))
		}
	}
	for _, s := range crm.LostStages() {
		if crm.Stage(s) != crm.Lost {
			t.Errorf("lost stage %q classified %s", s, crm.Stage(s))
		}
	}
}
