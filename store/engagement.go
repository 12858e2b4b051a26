package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// EngagementChannel is one medium's points (seed 004 "Engagement"): a
// customer response (a signal through the medium) adds ResponsePoints; a
// follow-up through it that got no response (its status is one of the
// no-response statuses: an unattended call, a bounced email) adds
// NoResponsePoints, zero or negative.
type EngagementChannel struct {
	Enabled          bool    `json:"enabled"`
	ResponsePoints   float64 `json:"response_points"`
	NoResponsePoints float64 `json:"no_response_points"`
}

// EngagementSettings: the channels (the eleven mediums of seed 003), the
// window of activity that counts, and which follow-up statuses mean the
// follow-up got no response (compared trimmed and lower-cased).
type EngagementSettings struct {
	WindowDays         int                          `json:"window_days"`
	Channels           map[string]EngagementChannel `json:"channels"`
	NoResponseStatuses []string                     `json:"no_response_statuses"`
}

// ScoreEngagement gives every in-scope account its engagement score and
// label under runID, in one set-based statement. An account's raw score
// sums, over the enabled channels, the points of the activities in the
// window of the account itself and of its contacts. The score is the raw
// score as a share of the org's 95th percentile of positive raw scores
// (percentile_cont), times 100, rounded, capped at 100; a raw score at or
// below 0, or an org where no account scores above 0, scores 0. rules
// read "score"; the first that matches names the label.
func (db *DB) ScoreEngagement(ctx context.Context, orgID int64, s EngagementSettings, rules []LabelRule, scope Filter, now time.Time, runID string) (LabelRun, error) {
	if s.WindowDays < 1 {
		return LabelRun{}, fmt.Errorf("engagement window %d days: %w", s.WindowDays, ErrInvalidQuery)
	}
	var media []string
	var resp, neg []float64
	for _, m := range Mediums() {
		if c, ok := s.Channels[m]; ok && c.Enabled {
			media, resp, neg = append(media, m), append(resp, c.ResponsePoints), append(neg, c.NoResponsePoints)
		}
	}
	args := []any{orgID, now, runID, now.Add(-time.Duration(s.WindowDays) * 24 * time.Hour),
		pq.StringArray(media), pq.Float64Array(resp), pq.Float64Array(neg), pq.StringArray(normStatuses(s.NoResponseStatuses))}
	where, err := scopeSQL(scope, &args)
	if err != nil {
		return LabelRun{}, err
	}
	label, err := labelCase(rules, map[string]string{"score": "s.score"}, now, &args)
	if err != nil {
		return LabelRun{}, err
	}
	query := `acts AS (
			SELECT coalesce(x.account_id, c.account_id) AS account_id, x.medium,
				count(*) FILTER (WHERE x.direction = 'signal') AS signals,
				count(*) FILTER (WHERE x.direction = 'follow_up' AND lower(btrim(coalesce(x.status, ''))) = ANY($8)) AS unanswered
			FROM activities x LEFT JOIN contacts c ON c.id = x.contact_id
			WHERE x.org_id = $1 AND x.state = 'active' AND x.occurred_at > $4 AND x.occurred_at <= $2 AND x.medium = ANY($5)
			GROUP BY 1, 2
		), per AS (
			SELECT acts.account_id, acts.medium, acts.signals, acts.unanswered,
				acts.signals * ch.resp + acts.unanswered * ch.neg AS points
			FROM acts JOIN unnest($5::text[], $6::numeric[], $7::numeric[]) AS ch (medium, resp, neg) USING (medium)
			WHERE acts.account_id IS NOT NULL
		), agg AS (
			SELECT account_id, sum(points) AS raw_points,
				jsonb_object_agg(medium, jsonb_build_object('signals', signals, 'unanswered', unanswered, 'points', points)) AS channels,
				(array_agg(medium ORDER BY unanswered DESC, medium) FILTER (WHERE unanswered > 0))[1] AS weakest
			FROM per GROUP BY account_id
		), raw AS (
			SELECT a.id AS account_id, coalesce(g.raw_points, 0) AS raw_points, coalesce(g.channels, '{}') AS channels, g.weakest
			FROM accounts a LEFT JOIN agg g ON g.account_id = a.id
			WHERE a.org_id = $1 AND a.state = 'active' AND (` + where + `)
		), p AS MATERIALIZED (
			-- Materialized: the one-row percentile is joined to every
			-- account, and an inlined aggregate on the inner side of that
			-- join runs again for each row (seconds became minutes over
			-- 60,000 accounts not yet analysed).
			SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY raw_points)::numeric AS p95 FROM raw WHERE raw_points > 0
		), scored AS (
			SELECT raw.*, p.p95,
				CASE WHEN p.p95 IS NULL OR p.p95 <= 0 OR raw.raw_points <= 0 THEN 0
				     ELSE least(100, round(100 * raw.raw_points / p.p95)) END::smallint AS score
			FROM raw, p
		), labelled AS (
			SELECT s.account_id,
				jsonb_build_object('raw_points', s.raw_points, 'p95', round(s.p95, 2), 'channels', s.channels,
					'most_unanswered_channel', s.weakest, 'window_days', ` + fmt.Sprint(s.WindowDays) + `) AS raw,
				s.score, ` + label + ` AS label
			FROM scored s
		)`
	run, err := db.labelInTx(ctx, TechniqueEngagement, query, args)
	if err != nil {
		return LabelRun{}, fmt.Errorf("score engagement of org %d: %w", orgID, err)
	}
	return run, nil
}

func normStatuses(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	return out
}

// CallTimes is when an account's contacts answer calls: per UTC hour and
// per ISO weekday (1 Monday .. 7 Sunday), the calls in the window that
// reached them (call signals, and call follow-ups with a status that is
// not a no-response status), most first.
type CallTimes struct {
	Answered   int       `json:"answered_calls"`
	Unanswered int       `json:"unanswered_calls"`
	Hours      []TimeBin `json:"best_hours_utc"`
	Weekdays   []TimeBin `json:"best_weekdays"`
}

// TimeBin is one hour (0-23) or weekday (Monday..Sunday) and its count.
type TimeBin struct {
	At    string `json:"at"`
	Calls int    `json:"calls"`
}

// EngagementCallTimes reads an account's call outcomes in the window, for
// the explanation (the seed's best time to get hold of the contact).
func (db *DB) EngagementCallTimes(ctx context.Context, orgID int64, account string, s EngagementSettings, now time.Time) (CallTimes, error) {
	id, err := db.accountID(ctx, orgID, account)
	if err != nil {
		return CallTimes{}, err
	}
	var rows []struct {
		Dow      int  `db:"dow"`
		Hour     int  `db:"hour"`
		Answered bool `db:"answered"`
		N        int  `db:"n"`
	}
	err = db.SelectContext(ctx, &rows, `
		SELECT extract(isodow FROM x.occurred_at AT TIME ZONE 'UTC')::int AS dow, extract(hour FROM x.occurred_at AT TIME ZONE 'UTC')::int AS hour,
			NOT (x.direction = 'follow_up' AND lower(btrim(coalesce(x.status, ''))) = ANY($5)) AS answered, count(*) AS n
		FROM activities x LEFT JOIN contacts c ON c.id = x.contact_id
		WHERE x.org_id = $1 AND coalesce(x.account_id, c.account_id) = $2 AND x.state = 'active' AND x.medium = 'call'
		  AND x.occurred_at > $3 AND x.occurred_at <= $4
		  AND (x.direction = 'signal' OR x.status IS NOT NULL)
		GROUP BY 1, 2, 3`, orgID, id, now.Add(-time.Duration(s.WindowDays)*24*time.Hour), now, pq.StringArray(normStatuses(s.NoResponseStatuses)))
	if err != nil {
		return CallTimes{}, fmt.Errorf("call times of account %s: %w", account, err)
	}
	hours, days := map[int]int{}, map[int]int{}
	var out CallTimes
	for _, r := range rows {
		if !r.Answered {
			out.Unanswered += r.N
			continue
		}
		out.Answered += r.N
		hours[r.Hour] += r.N
		days[r.Dow] += r.N
	}
	weekday := []string{"", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}
	out.Hours = topBins(hours, 3, func(h int) string { return fmt.Sprintf("%02d:00", h) })
	out.Weekdays = topBins(days, 3, func(d int) string { return weekday[d] })
	return out, nil
}

func topBins(m map[int]int, n int, name func(int) string) []TimeBin {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b int) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return a - b
	})
	out := []TimeBin{}
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, TimeBin{At: name(k), Calls: m[k]})
	}
	return out
}
