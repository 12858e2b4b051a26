package summary

import (
	"errors"
	"fmt"
	"slices"

	"github.com/crmq/crmq/llm"
	"github.com/crmq/crmq/llm/offline"
	"github.com/crmq/crmq/store"
)

// ErrUnknownModule is returned for a module that is neither built in nor a
// custom module.
var ErrUnknownModule = errors.New("summary: unknown module")

// InsufficientData is the text of a derived section (Executive Summary,
// Strategic Next Steps) whose every feeding section is hidden (seed 001,
// "Sections with Insufficient Data").
const InsufficientData = "Insufficient data: every section this summary is built from is hidden."

// Catalog lists the sections of a module's summary in display order, with
// every feed: the section definitions of llm/offline, where each section's
// instruction, figures and offline composer are defined side by side.
// Accounts have the ten Certinia sections (seed 001), Account Highlights
// also carrying seed 000's account items; contacts, leads and deals have
// seed 000's sections; every other module, custom ones included, has a
// general overview.
func Catalog(module string) ([]llm.SectionSpec, error) {
	switch module {
	case "accounts", "contacts", "leads", "deals":
		return offline.Catalog(module), nil
	}
	if !store.ValidModule(module) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModule, module)
	}
	return offline.Catalog(""), nil
}

// Sections are the sections to ask a model for, given which are visible: a
// section is hidden when visible holds false for its key (nil shows
// everything). A derived section is asked for with Feeds narrowed to its
// visible feeders; when every feeder is hidden it is not asked for but
// listed in insufficient, and shows InsufficientData. An unknown module
// asks for nothing.
func Sections(module string, visible map[string]bool) (asked []llm.SectionSpec, insufficient []string) {
	specs, err := Catalog(module)
	if err != nil {
		return nil, nil
	}
	shown := func(key string) bool {
		v, ok := visible[key]
		return !ok || v
	}
	for _, s := range specs {
		if !shown(s.Key) {
			continue
		}
		if len(s.Feeds) > 0 {
			s.Feeds = slices.DeleteFunc(s.Feeds, func(k string) bool { return !shown(k) })
			if len(s.Feeds) == 0 {
				insufficient = append(insufficient, s.Key)
				continue
			}
		}
		asked = append(asked, s)
	}
	return asked, insufficient
}
