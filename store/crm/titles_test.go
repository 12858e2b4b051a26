package crm

import "testing"

func TestTitleSeniority(t *testing.T) {
	for title, want := range map[string]Seniority{
		"Chief Executive Officer": CLevel, "CEO": CLevel, "CTO": CLevel, "Co-Founder": CLevel,
		"VP Operations": VP, "Vice President, Sales": VP, "SVP Finance": VP,
		"Head of Finance": Head, "Director of IT": Director, "Engineering Manager": Manager,
		"IT Manager": Manager, "Team Lead": Manager,
		// Whole words only: an owner is no executive, a headset no head.
		"Product Owner": IndividualContributor, "Business Owner": IndividualContributor,
		"Headset Specialist": IndividualContributor, "Directory Admin": IndividualContributor,
		"Chiefly Analyst": IndividualContributor, "Engineer": IndividualContributor, "": IndividualContributor,
	} {
		if got := TitleSeniority(title); got != want {
			t.Errorf("TitleSeniority(%q) = %s, want %s", title, got, want)
		}
	}
	if !Director.Executive() || Manager.Executive() {
		t.Error("directors and above are executives, managers are not")
	}
}
