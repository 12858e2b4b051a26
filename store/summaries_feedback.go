package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"
)

// Feedback of seed 000 on a summary: positive or negative; a negative one
// may say what was wrong (Reasons) and what to improve (Areas); either may
// carry a comment.
type Feedback struct {
	Rating  string   `json:"rating"`
	Reasons []string `json:"reasons"`
	Areas   []string `json:"areas"`
	Comment string   `json:"comment"`
}

// StoredFeedback is one user's feedback on a summary as stored.
type StoredFeedback struct {
	Feedback
	SummaryID string    `json:"summary_id"`
	UserID    string    `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Ratings, reasons and areas of feedback.
const (
	RatingPositive = "positive"
	RatingNegative = "negative"
)

// FeedbackReasons are what can be wrong with a summary.
func FeedbackReasons() []string {
	return []string{"factual_error", "unclear", "irrelevant", "missing_context"}
}

// FeedbackAreas are the aspects a summary can improve on.
func FeedbackAreas() []string {
	return []string{"accuracy", "clarity", "completeness", "conciseness"}
}

// MaxFeedbackComment bounds a comment, in characters.
const MaxFeedbackComment = 4000

// ErrInvalidFeedback matches (errors.Is) every FeedbackErrors.
var ErrInvalidFeedback = errors.New("invalid feedback")

// FeedbackErrors says what is wrong with feedback, by field ("rating",
// "reasons", "areas", "comment", "user_id"). errors.Is(err,
// ErrInvalidFeedback) holds for it; errors.As gets the fields.
type FeedbackErrors map[string]string

func (e FeedbackErrors) Error() string { return fieldErrors("invalid feedback", e) }

// Is makes FeedbackErrors match ErrInvalidFeedback.
func (e FeedbackErrors) Is(target error) bool { return target == ErrInvalidFeedback }

// validate checks f and returns it normalised (reasons and areas without
// repeats, never nil).
func (f Feedback) validate(userID string) (Feedback, error) {
	errs := FeedbackErrors{}
	if userID == "" || !storableID(userID) {
		errs["user_id"] = "a user id is required"
	}
	switch f.Rating {
	case RatingPositive, RatingNegative:
	case "":
		errs["rating"] = "required: positive or negative"
	default:
		errs["rating"] = fmt.Sprintf("%q is not positive or negative", f.Rating)
	}
	check := func(field string, values, allowed []string) []string {
		out := []string{}
		var bad []string
		for _, v := range values {
			switch {
			case !slices.Contains(allowed, v):
				bad = append(bad, fmt.Sprintf("%q", v))
			case !slices.Contains(out, v):
				out = append(out, v)
			}
		}
		switch {
		case len(bad) > 0:
			errs[field] = fmt.Sprintf("%s not one of %s", strings.Join(bad, ", "), strings.Join(allowed, ", "))
		case len(out) > 0 && f.Rating == RatingPositive:
			errs[field] = "only negative feedback has " + field
		}
		return out
	}
	f.Reasons = check("reasons", f.Reasons, FeedbackReasons())
	f.Areas = check("areas", f.Areas, FeedbackAreas())
	switch {
	case !utf8.ValidString(f.Comment) || strings.ContainsRune(f.Comment, 0):
		errs["comment"] = "must be valid UTF-8 text without NUL characters"
	case utf8.RuneCountInString(f.Comment) > MaxFeedbackComment:
		errs["comment"] = fmt.Sprintf("longer than %d characters", MaxFeedbackComment)
	}
	if len(errs) > 0 {
		return f, errs
	}
	return f, nil
}

// PutSummaryFeedback records the user's feedback on the org's summary,
// replacing their earlier feedback on it. A FeedbackErrors (ErrInvalidFeedback)
// for feedback that does not validate; ErrNotFound when the org has no such
// summary.
func (db *DB) PutSummaryFeedback(ctx context.Context, orgID int64, summaryID, userID string, f Feedback) error {
	f, err := f.validate(userID)
	if err != nil {
		return err
	}
	var ok bool
	err = db.GetContext(ctx, &ok, `
		INSERT INTO summary_feedback (summary_id, org_id, user_id, rating, reasons, areas, comment)
		SELECT s.id, s.org_id, $3, $4, $5, $6, $7 FROM summaries s WHERE s.org_id = $1 AND s.id = $2
		ON CONFLICT (summary_id, user_id) DO UPDATE SET
			rating = EXCLUDED.rating, reasons = EXCLUDED.reasons, areas = EXCLUDED.areas,
			comment = EXCLUDED.comment, updated_at = now()
		RETURNING true`, orgID, summaryID, userID, f.Rating, pq.Array(f.Reasons), pq.Array(f.Areas), f.Comment)
	if err != nil {
		return notFound(err, fmt.Sprintf("feedback on summary %q", summaryID))
	}
	return nil
}

// SummaryFeedback reads the user's feedback on the org's summary;
// ErrNotFound when there is none.
func (db *DB) SummaryFeedback(ctx context.Context, orgID int64, summaryID, userID string) (StoredFeedback, error) {
	var r struct {
		Rating    string         `db:"rating"`
		Reasons   pq.StringArray `db:"reasons"`
		Areas     pq.StringArray `db:"areas"`
		Comment   string         `db:"comment"`
		CreatedAt time.Time      `db:"created_at"`
		UpdatedAt time.Time      `db:"updated_at"`
	}
	err := db.GetContext(ctx, &r, `
		SELECT rating, reasons, areas, comment, created_at, updated_at FROM summary_feedback
		WHERE org_id = $1 AND summary_id = $2 AND user_id = $3`, orgID, summaryID, userID)
	if err != nil {
		return StoredFeedback{}, notFound(err, fmt.Sprintf("feedback of %q on summary %q", userID, summaryID))
	}
	return StoredFeedback{
		Feedback:  Feedback{Rating: r.Rating, Reasons: []string(r.Reasons), Areas: []string(r.Areas), Comment: r.Comment},
		SummaryID: summaryID, UserID: userID, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}, nil
}

// FeedbackCounts counts feedback: ratings, and among negative feedback how
// often each reason and area was given. Every reason and area is present,
// zero or not.
type FeedbackCounts struct {
	Positive int            `json:"positive"`
	Negative int            `json:"negative"`
	Reasons  map[string]int `json:"reasons"`
	Areas    map[string]int `json:"areas"`
}

// FeedbackStats is an org's feedback on its summaries: in total, by module
// and by model.
type FeedbackStats struct {
	Total    FeedbackCounts            `json:"total"`
	ByModule map[string]FeedbackCounts `json:"by_module"`
	ByModel  map[string]FeedbackCounts `json:"by_model"`
}

func newFeedbackCounts() FeedbackCounts {
	c := FeedbackCounts{Reasons: map[string]int{}, Areas: map[string]int{}}
	for _, r := range FeedbackReasons() {
		c.Reasons[r] = 0
	}
	for _, a := range FeedbackAreas() {
		c.Areas[a] = 0
	}
	return c
}

// SummaryFeedbackStats aggregates the org's feedback in one query.
func (db *DB) SummaryFeedbackStats(ctx context.Context, orgID int64) (FeedbackStats, error) {
	var rows []struct {
		Dim   string `db:"dim"`
		Value string `db:"value"`
		Kind  string `db:"kind"`
		Key   string `db:"key"`
		N     int    `db:"n"`
	}
	err := db.SelectContext(ctx, &rows, `
		WITH f AS (
			SELECT s.module, s.model, fb.rating, fb.reasons, fb.areas
			FROM summary_feedback fb JOIN summaries s ON s.id = fb.summary_id AND s.org_id = $1
			WHERE fb.org_id = $1),
		d AS (
			SELECT dim.dim, dim.value, f.* FROM f
			CROSS JOIN LATERAL (VALUES ('total', ''), ('module', f.module), ('model', f.model)) AS dim(dim, value))
		SELECT dim, value, 'rating' AS kind, rating AS key, count(*) AS n FROM d GROUP BY 1, 2, 3, 4
		UNION ALL
		SELECT dim, value, 'reason', r, count(*) FROM d CROSS JOIN unnest(d.reasons) AS r GROUP BY 1, 2, 3, 4
		UNION ALL
		SELECT dim, value, 'area', a, count(*) FROM d CROSS JOIN unnest(d.areas) AS a GROUP BY 1, 2, 3, 4`, orgID)
	if err != nil {
		return FeedbackStats{}, fmt.Errorf("summary feedback stats: %w", err)
	}
	st := FeedbackStats{Total: newFeedbackCounts(), ByModule: map[string]FeedbackCounts{}, ByModel: map[string]FeedbackCounts{}}
	for _, r := range rows {
		var c FeedbackCounts
		switch r.Dim {
		case "total":
			c = st.Total
		case "module":
			c = st.ByModule[r.Value]
		case "model":
			c = st.ByModel[r.Value]
		}
		if c.Reasons == nil {
			c = newFeedbackCounts()
		}
		switch {
		case r.Kind == "rating" && r.Key == RatingPositive:
			c.Positive = r.N
		case r.Kind == "rating":
			c.Negative = r.N
		case r.Kind == "reason":
			c.Reasons[r.Key] = r.N
		case r.Kind == "area":
			c.Areas[r.Key] = r.N
		}
		switch r.Dim {
		case "total":
			st.Total = c
		case "module":
			st.ByModule[r.Value] = c
		case "model":
			st.ByModel[r.Value] = c
		}
	}
	return st, nil
}

// Section visibility (seed 001: an administrator shows or hides summary
// sections). Keys are the llm section keys; the store checks their form
// only, as it knows no sections.

// ErrInvalidSectionKey is returned for a section key that is not 1 to 64
// of a-z, 0-9 and _.
var ErrInvalidSectionKey = errors.New("invalid section key")

var sectionKeyRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// SummarySectionVisibility returns the org's explicit settings, by section
// key; a section without one has its default visibility.
func (db *DB) SummarySectionVisibility(ctx context.Context, orgID int64) (map[string]bool, error) {
	var rows []struct {
		Key     string `db:"section_key"`
		Visible bool   `db:"visible"`
	}
	if err := db.SelectContext(ctx, &rows,
		`SELECT section_key, visible FROM summary_section_settings WHERE org_id = $1`, orgID); err != nil {
		return nil, fmt.Errorf("summary section visibility: %w", err)
	}
	out := make(map[string]bool, len(rows))
	for _, r := range rows {
		out[r.Key] = r.Visible
	}
	return out, nil
}

// SetSummarySectionVisibility sets the given sections' visibility for the
// org, leaving the others as they are; all or nothing.
func (db *DB) SetSummarySectionVisibility(ctx context.Context, orgID int64, visible map[string]bool) error {
	keys := slices.Sorted(maps.Keys(visible))
	vals := make([]bool, len(keys))
	for i, k := range keys {
		if !sectionKeyRE.MatchString(k) {
			return fmt.Errorf("section %q: %w", k, ErrInvalidSectionKey)
		}
		vals[i] = visible[k]
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO summary_section_settings (org_id, section_key, visible)
		SELECT $1, k, v FROM unnest($2::text[], $3::boolean[]) AS s(k, v)
		ON CONFLICT (org_id, section_key) DO UPDATE SET visible = EXCLUDED.visible, updated_at = now()`,
		orgID, pq.Array(keys), pq.Array(vals))
	if err != nil {
		return fmt.Errorf("set summary section visibility: %w", err)
	}
	return nil
}
