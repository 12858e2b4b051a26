package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crmq/crmq/store"
)

// interactions serves a lead's or contact's Interactions tab (seed 003).
func (s *server) interactions(w http.ResponseWriter, r *http.Request) {
	module := r.PathValue("module")
	if module != "leads" && module != "contacts" {
		s.fail(w, r, invalid("interactions exist for leads and contacts only", map[string]string{"module": "must be leads or contacts"}))
		return
	}
	q, err := interactionQuery(r, s.now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	trail, err := s.db.Interactions(r.Context(), orgFrom(r.Context()).ID, module, r.PathValue("id"), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, trail)
}

// interactionQuery reads view, medium, user, from/to or preset, and limit.
// medium and user may repeat or hold comma-separated values.
func interactionQuery(r *http.Request, now time.Time) (store.InteractionQuery, error) {
	v := r.URL.Query()
	q := store.InteractionQuery{View: v.Get("view"), Mediums: multi(v["medium"]), Users: multi(v["user"])}
	if q.View == "" {
		q.View = store.ViewAll
	}
	fields := map[string]string{}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxTrailLimit {
			fields["limit"] = "an integer from 1 to " + strconv.Itoa(store.MaxTrailLimit)
		}
		q.Limit = n
	}
	if p := v.Get("preset"); p != "" {
		if v.Get("from") != "" || v.Get("to") != "" {
			fields["preset"] = "use either preset or from/to"
		} else if from, to, err := store.DatePreset(p, now); err != nil {
			fields["preset"] = "one of today, yesterday, last_7_days, last_30_days"
		} else {
			q.From, q.To = &from, &to
		}
	}
	for _, name := range []string{"from", "to"} {
		raw := v.Get(name)
		if raw == "" {
			continue
		}
		t, err := parseTimeOrDate(raw, name == "to")
		if err != nil {
			fields[name] = "an RFC 3339 time or a YYYY-MM-DD date"
			continue
		}
		if name == "from" {
			q.From = &t
		} else {
			q.To = &t
		}
	}
	if len(fields) > 0 {
		return q, invalid("bad query parameters", fields)
	}
	return q, nil
}

// parseTimeOrDate reads an RFC 3339 time or a date; a date as the end of a
// range includes that whole day (to is exclusive).
func parseTimeOrDate(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, err
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

func multi(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
