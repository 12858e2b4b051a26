package segment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/crmq/crmq/jobs"
	"github.com/crmq/crmq/store"
)

// DailyEdits is the seed's limit: once ABM is configured, a technique
// takes at most two edits or activations per UTC day (renaming labels and
// deactivating are exempt).
const DailyEdits = 2

// Names of the techniques this package configures.
var Names = []string{store.TechniqueRFM, store.TechniqueFirmographics, store.TechniqueEngagement, store.TechniqueVoC, store.TechniqueRecommendations}

// View is a technique as GET /v1/abm/techniques shows it and PUT takes it:
// a client can GET, change and PUT back. Read-only fields are ignored on
// PUT.
type View struct {
	Technique string          `json:"technique"`
	State     string          `json:"state"`
	Settings  json.RawMessage `json:"settings"`
	Labels    []Label         `json:"labels"`
	// Read-only.
	Version     int        `json:"version"`
	RefreshedAt *time.Time `json:"refreshed_at,omitempty"`
	EditsToday  int        `json:"edits_today"`
	EditLimit   int        `json:"edit_limit"` // per UTC day once configured; 0 before
}

// Why a technique change is refused.
var (
	ErrUnknownTechnique = errors.New("unknown technique")
	ErrInUse            = store.ErrInUse
)

// InUseError names the segments that lock a technique or its labels.
type InUseError = store.InUseError

// Setup is technique configuration, shared by the API and the CLI.
type Setup struct {
	DB  *store.DB
	Enq *jobs.Enqueuer
	Now func() time.Time
}

// Views lists every technique, defaults filled in.
func (s Setup) Views(ctx context.Context, orgID int64) ([]View, error) {
	stored, err := s.DB.Techniques(ctx, orgID)
	if err != nil {
		return nil, err
	}
	configured, err := s.DB.ABMConfigured(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(Names))
	for _, name := range Names {
		v, err := s.view(ctx, orgID, name, stored[name], configured)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s Setup) view(ctx context.Context, orgID int64, name string, t store.Technique, configured bool) (View, error) {
	v := View{Technique: name, State: store.TechniqueInactive, Version: t.Version, RefreshedAt: t.RefreshedAt}
	if t.State != "" {
		v.State = t.State
	}
	t.Name = name
	var err error
	switch name {
	case store.TechniqueRFM:
		var rfm RFM
		rfm, v.Labels, err = DecodeRFM(t)
		if err == nil {
			v.Settings, err = json.Marshal(rfm)
		}
	case store.TechniqueEngagement:
		var e Engagement
		e, v.Labels, err = DecodeEngagement(t)
		if err == nil {
			v.Settings, err = json.Marshal(e)
		}
	case store.TechniqueVoC:
		var voc VoC
		voc, v.Labels, err = DecodeVoC(t)
		if err == nil {
			v.Settings, err = json.Marshal(voc)
		}
	case store.TechniqueRecommendations:
		var rec Recommendations
		rec, v.Labels, err = DecodeRecommendations(t)
		if err == nil {
			rec.Roles, err = s.recommendRoles(ctx, orgID)
		}
		if err == nil {
			v.Settings, err = json.Marshal(rec)
		}
	default:
		v.Settings = json.RawMessage(`{}`)
		v.Labels, err = DecodeLabels(t, DefaultFirmographicLabels())
	}
	if err != nil {
		return View{}, err
	}
	if configured {
		v.EditLimit = DailyEdits
		if v.EditsToday, err = s.DB.EditsOn(ctx, orgID, name, s.Now()); err != nil {
			return View{}, err
		}
	}
	return v, nil
}

// Put saves a technique's settings and labels. A change of settings or of
// any label's criteria counts against the day's limit and is refused
// while a segment uses the technique (settings) or the label; renaming
// labels is free but refused for labels a segment names. An active
// technique is refreshed (the job is returned).
func (s Setup) Put(ctx context.Context, orgID int64, name string, in View) (View, *store.Job, error) {
	if !slices.Contains(Names, name) {
		return View{}, nil, fmt.Errorf("%q: %w", name, ErrUnknownTechnique)
	}
	stored, err := s.DB.Techniques(ctx, orgID)
	if err != nil {
		return View{}, nil, err
	}
	cur, err := s.view(ctx, orgID, name, stored[name], false)
	if err != nil {
		return View{}, nil, err
	}
	settings := json.RawMessage(`{}`)
	switch name {
	case store.TechniqueRFM:
		var rfm RFM
		if err := strictJSON(in.Settings, &rfm); err != nil {
			return View{}, nil, Errors{"settings": err.Error()}
		}
		if _, err := CheckRFM(rfm, in.Labels); err != nil {
			return View{}, nil, err
		}
		settings, _ = json.Marshal(rfm)
	case store.TechniqueEngagement:
		var e Engagement
		if err := strictJSON(in.Settings, &e); err != nil {
			return View{}, nil, Errors{"settings": err.Error()}
		}
		if _, err := CheckEngagement(e, in.Labels); err != nil {
			return View{}, nil, err
		}
		settings, _ = json.Marshal(e)
	case store.TechniqueVoC:
		var voc VoC
		if err := strictJSON(in.Settings, &voc); err != nil {
			return View{}, nil, Errors{"settings": err.Error()}
		}
		if voc.Competitors == nil {
			voc.Competitors = []string{}
		}
		if voc.Keywords == nil {
			voc.Keywords = []string{}
		}
		if voc.IntentClassifier == "" {
			voc.IntentClassifier = store.VoCIntentRules
		}
		if _, err := CheckVoC(voc, in.Labels); err != nil {
			return View{}, nil, err
		}
		settings, _ = json.Marshal(voc)
	case store.TechniqueRecommendations:
		var rec Recommendations
		if err := strictJSON(in.Settings, &rec); err != nil {
			return View{}, nil, Errors{"settings": err.Error()}
		}
		if err := CheckRecommendations(rec, in.Labels); err != nil {
			return View{}, nil, err
		}
		if err := s.checkProducts(ctx, orgID, in.Labels); err != nil {
			return View{}, nil, err
		}
		rec.Roles = nil // read-only: from the mapping
		settings, _ = json.Marshal(rec)
		var was Recommendations // the view shows the roles; they are not settings
		if json.Unmarshal(cur.Settings, &was) == nil {
			was.Roles = nil
			cur.Settings, _ = json.Marshal(was)
		}
	default:
		fields, err := s.DB.AccountFields(ctx, orgID)
		if err != nil {
			return View{}, nil, err
		}
		if len(in.Settings) > 0 && string(in.Settings) != "{}" && string(in.Settings) != "null" {
			return View{}, nil, Errors{"settings": "firmographics has no settings"}
		}
		if _, err := CheckFirmographics(in.Labels, fields); err != nil {
			return View{}, nil, err
		}
	}
	settingsChanged := !jsonEqual(cur.Settings, settings)
	changed, renamed := labelChanges(cur.Labels, in.Labels)
	var guard *store.UseGuard
	if settingsChanged || len(in.Labels) != len(cur.Labels) {
		guard = &store.UseGuard{}
	} else if len(changed)+len(renamed) > 0 {
		guard = &store.UseGuard{Labels: append(changed, renamed...)}
	}
	kind := ""
	if settingsChanged || len(changed) > 0 || len(in.Labels) != len(cur.Labels) {
		kind = "edit"
	}
	labels, _ := json.Marshal(in.Labels)
	t, err := s.DB.WriteTechnique(ctx, orgID, name, store.TechniqueWrite{Settings: settings, Labels: labels, Kind: kind, Limit: DailyEdits, Now: s.Now(), Guard: guard})
	if err != nil {
		return View{}, nil, err
	}
	return s.afterWrite(ctx, orgID, t, kind != "")
}

// Activate turns a technique on (counted against the day's limit) and
// refreshes it; Deactivate turns it off (free), refused while a segment
// uses it.
func (s Setup) Activate(ctx context.Context, orgID int64, name string) (View, *store.Job, error) {
	return s.setState(ctx, orgID, name, store.TechniqueActive, "activate")
}

// Deactivate turns a technique off; its results stay until it refreshes again.
func (s Setup) Deactivate(ctx context.Context, orgID int64, name string) (View, *store.Job, error) {
	return s.setState(ctx, orgID, name, store.TechniqueInactive, "")
}

func (s Setup) setState(ctx context.Context, orgID int64, name, state, kind string) (View, *store.Job, error) {
	if !slices.Contains(Names, name) {
		return View{}, nil, fmt.Errorf("%q: %w", name, ErrUnknownTechnique)
	}
	if state == store.TechniqueActive && behavioural(name) {
		if err := s.behaviourReady(ctx, orgID, name); err != nil {
			return View{}, nil, err
		}
	}
	stored, err := s.DB.Techniques(ctx, orgID)
	if err != nil {
		return View{}, nil, err
	}
	w := store.TechniqueWrite{State: state, Kind: kind, Limit: DailyEdits, Now: s.Now()}
	if state == store.TechniqueInactive {
		w.Guard = &store.UseGuard{} // segments read every label of it
	}
	if _, ok := stored[name]; !ok { // first save: write the defaults out
		cur, err := s.view(ctx, orgID, name, store.Technique{}, false)
		if err != nil {
			return View{}, nil, err
		}
		w.Settings = cur.Settings
		w.Labels, _ = json.Marshal(cur.Labels)
	}
	if stored[name].State == state {
		w.Kind = "" // no change, nothing to count
	}
	t, err := s.DB.WriteTechnique(ctx, orgID, name, w)
	if err != nil {
		return View{}, nil, err
	}
	return s.afterWrite(ctx, orgID, t, state == store.TechniqueActive && w.Kind != "")
}

// afterWrite refreshes an active technique that changed and returns its view.
func (s Setup) afterWrite(ctx context.Context, orgID int64, t store.Technique, refresh bool) (View, *store.Job, error) {
	var job *store.Job
	if refresh && t.State == store.TechniqueActive && s.Enq != nil {
		j, err := s.Refresh(ctx, orgID, t.Name)
		if err != nil {
			return View{}, nil, err
		}
		job = &j
	}
	configured, err := s.DB.ABMConfigured(ctx, orgID)
	if err != nil {
		return View{}, nil, err
	}
	v, err := s.view(ctx, orgID, t.Name, t, configured)
	return v, job, err
}

// Refresh enqueues segment:refresh for the org (technique "" for all).
func (s Setup) Refresh(ctx context.Context, orgID int64, technique string) (store.Job, error) {
	task, err := jobs.NewSegmentRefreshTask(jobs.SegmentRefreshPayload{OrgID: orgID, Technique: technique})
	if err != nil {
		return store.Job{}, err
	}
	j, _, err := s.Enq.Enqueue(ctx, jobs.Request{OrgID: orgID, Task: task})
	return j, err
}

// labelChanges compares label lists of the same length position by
// position: the names whose criteria changed, and the names that were
// renamed (their old names).
func labelChanges(old, new []Label) (changed, renamed []string) {
	for i := range min(len(old), len(new)) {
		if !reflect.DeepEqual(normalize(labelRule(old[i])), normalize(labelRule(new[i]))) {
			changed = append(changed, old[i].Name)
		} else if !strings.EqualFold(strings.TrimSpace(old[i].Name), strings.TrimSpace(new[i].Name)) {
			renamed = append(renamed, old[i].Name)
		}
	}
	return changed, renamed
}

// labelRule is what a label decides by: everything but its name.
func labelRule(l Label) Label {
	l.Name = ""
	return l
}

func normalize(c any) any {
	b, _ := json.Marshal(c)
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func strictJSON(raw json.RawMessage, dst any) error {
	if len(raw) == 0 {
		return errors.New("required")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// NotReadyError lists what an org lacks before ABM can be configured.
type NotReadyError struct{ Missing []string }

func (e *NotReadyError) Error() string {
	return "ABM cannot be configured yet: " + strings.Join(e.Missing, "; ")
}

// Configure checks the mapping, the global criteria and that at least one
// technique is active, marks the org configured (from now on the daily
// edit limit applies) and enqueues the first full refresh.
func (s Setup) Configure(ctx context.Context, orgID int64) (store.Job, error) {
	var missing []string
	m, err := s.DB.ABMMapping(ctx, orgID)
	if err != nil {
		return store.Job{}, err
	}
	if _, err := store.ResolveABMMapping(m); err != nil {
		missing = append(missing, "a valid mapping ("+err.Error()+")")
	}
	if _, err := s.DB.ScopeFilter(ctx, orgID, s.Now()); err != nil {
		missing = append(missing, "global criteria that check against the mapping ("+err.Error()+")")
	}
	stored, err := s.DB.Techniques(ctx, orgID)
	if err != nil {
		return store.Job{}, err
	}
	active := false
	for _, name := range Names {
		active = active || stored[name].State == store.TechniqueActive || stored[name].State == store.TechniqueRefreshing
	}
	if !active {
		missing = append(missing, "at least one active technique (POST /v1/abm/techniques/{technique}/activate)")
	}
	if len(missing) > 0 {
		return store.Job{}, &NotReadyError{Missing: missing}
	}
	if err := s.DB.MarkABMConfigured(ctx, orgID, s.Now()); err != nil {
		return store.Job{}, err
	}
	task, err := jobs.NewSegmentRefreshTask(jobs.SegmentRefreshPayload{OrgID: orgID, Force: true})
	if err != nil {
		return store.Job{}, err
	}
	j, _, err := s.Enq.Enqueue(ctx, jobs.Request{OrgID: orgID, Task: task})
	return j, err
}

// recommendRoles reads the seed's general configuration of the
// recommendations technique from the mapping.
func (s Setup) recommendRoles(ctx context.Context, orgID int64) (*RecommendRoles, error) {
	m, err := s.DB.ABMMapping(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return &RecommendRoles{RecommendedModule: m.Roles[store.RoleProducts].Module, RecommendedOnModule: m.Roles[store.RoleAccounts].Module,
		TransactionModule: m.Roles[store.RoleDeals].Module + " (won, with their line items)", CompletionField: "close_date"}, nil
}

// checkProducts refuses labels that name products the org does not have.
func (s Setup) checkProducts(ctx context.Context, orgID int64, labels []Label) error {
	want := RecommendProducts(labels)
	if len(want) == 0 {
		return nil
	}
	ids, err := s.DB.ProductIDs(ctx, orgID, want)
	if err != nil {
		return err
	}
	errs := Errors{}
	for i, l := range labels {
		if l.Recommend == nil {
			continue
		}
		for j, t := range l.Recommend.Types {
			for k, p := range t.Products {
				if _, ok := ids[p]; !ok {
					errs[fmt.Sprintf("labels[%d].preferences.types[%d].products[%d]", i, j, k)] = "no product " + p
				}
			}
		}
		for j, b := range l.Recommend.Bundles {
			for k, p := range b {
				if _, ok := ids[p]; !ok {
					errs[fmt.Sprintf("labels[%d].preferences.bundles[%d][%d]", i, j, k)] = "no product " + p
				}
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// behaviourReady refuses a behavioural technique (engagement, VoC,
// recommendations) while a custom module plays the accounts role: they
// reach accounts through the typed lookups of contacts, activities, cases
// and deals (contacts.account, deals.account), which a custom module's
// records do not have. store.ErrCustomAccounts, a 409.
func (s Setup) behaviourReady(ctx context.Context, orgID int64, name string) error {
	module, custom, err := s.DB.CustomAccounts(ctx, orgID)
	if err != nil {
		return err
	}
	if custom {
		return fmt.Errorf("%s reads accounts through the typed account lookups of contacts, activities and deals, which records of %s do not have; RFM and firmographics segment a custom accounts module: %w",
			name, module, store.ErrCustomAccounts)
	}
	return nil
}
