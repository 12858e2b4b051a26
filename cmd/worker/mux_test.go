package main

import (
	"testing"

	"github.com/crmq/crmq/jobs"
)

// Every task type jobs declares has exactly one handler here, registered
// with its declared spec, and nothing else is registered: a forgotten
// registration fails this test instead of a user's job.
func TestRegistryCoversEveryTaskType(t *testing.T) {
	regs := registry(deps{})
	registered := map[string]jobs.Spec{}
	for _, r := range regs {
		if _, dup := registered[r.Spec.Type]; dup {
			t.Errorf("%s registered twice", r.Spec.Type)
		}
		registered[r.Spec.Type] = r.Spec
		if r.Handler == nil {
			t.Errorf("%s has no handler", r.Spec.Type)
		}
	}
	for _, s := range jobs.Specs {
		got, ok := registered[s.Type]
		if !ok {
			t.Errorf("task type %s is declared in jobs but has no handler in the registry", s.Type)
		} else if got != s {
			t.Errorf("task type %s is registered with %+v, jobs declares %+v", s.Type, got, s)
		}
		delete(registered, s.Type)
	}
	for typ := range registered {
		t.Errorf("task type %s is registered but jobs declares no spec for it", typ)
	}
	if _, err := newMux(deps{}); err != nil {
		t.Fatalf("newMux: %v", err)
	}
}
