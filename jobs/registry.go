package jobs

import "sort"

// Generic is the body of POST /v1/jobs: the task type and, for a ping, the
// queue it probes. Task families with their own payloads have typed routes.
type Generic struct {
	Type   string `json:"type"`
	Queue  string `json:"queue,omitempty"`
	HoldMS int    `json:"hold_ms,omitempty"`
	// Technique narrows segment:refresh to rfm or firmographics.
	Technique string `json:"technique,omitempty"`
}

// generic are the task types POST /v1/jobs accepts.
var generic = map[string]func(orgID int64, g Generic) (Task, error){
	TypePing: func(orgID int64, g Generic) (Task, error) { return NewPingTask(orgID, g.Queue, g.HoldMS) },
	TypeOrphansRecompute: func(orgID int64, g Generic) (Task, error) {
		if g.Queue != "" || g.HoldMS != 0 {
			return Task{}, FieldErrors{"queue": "orphans:recompute takes no options; it always runs on queue low"}
		}
		return NewOrphansTask(orgID)
	},
	TypeSegmentRefresh: func(orgID int64, g Generic) (Task, error) {
		if g.Queue != "" || g.HoldMS != 0 {
			return Task{}, FieldErrors{"queue": "segment:refresh takes only technique; it always runs on queue default"}
		}
		return NewSegmentRefreshTask(SegmentRefreshPayload{OrgID: orgID, Technique: g.Technique})
	},
	TypeExportsExpire: func(orgID int64, g Generic) (Task, error) {
		if g.Queue != "" || g.HoldMS != 0 || g.Technique != "" {
			return Task{}, FieldErrors{"queue": "exports:expire takes no options; it always runs on queue low"}
		}
		return NewExportsExpireTask(orgID)
	},
	TypeSummariesPrune: func(orgID int64, g Generic) (Task, error) {
		if g.Queue != "" || g.HoldMS != 0 {
			return Task{}, FieldErrors{"queue": "summaries:prune takes no options; it always runs on queue low"}
		}
		return NewPruneTask(orgID)
	},
}

// GenericTypes lists the types POST /v1/jobs accepts.
func GenericTypes() []string {
	types := make([]string, 0, len(generic))
	for t := range generic {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}

// FromGeneric builds the task a POST /v1/jobs body asks for.
func FromGeneric(orgID int64, g Generic) (Task, error) {
	build, ok := generic[g.Type]
	if !ok {
		return Task{}, FieldErrors{"type": "unknown job type; one of " + joinTypes()}
	}
	return build(orgID, g)
}

func joinTypes() string {
	s := ""
	for i, t := range GenericTypes() {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}
