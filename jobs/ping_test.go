package jobs_test

import (
	"math"
	"testing"

	"github.com/crmq/crmq/jobs"
)

// hold_ms is compared as an int: values whose Duration overflows are
// refused like any other value over the limit.
func TestPingHoldIsBounded(t *testing.T) {
	for _, hold := range []int{-1, 20001, 9_300_000_000_000, math.MaxInt64 / 1000, math.MaxInt64} {
		if err := (jobs.PingPayload{OrgID: 1, Queue: jobs.QueueDefault, HoldMS: hold}).Validate(); err == nil {
			t.Errorf("hold_ms %d was accepted", hold)
		}
	}
	for _, hold := range []int{0, 1, 20000} {
		if err := (jobs.PingPayload{OrgID: 1, Queue: jobs.QueueDefault, HoldMS: hold}).Validate(); err != nil {
			t.Errorf("hold_ms %d: %v", hold, err)
		}
	}
}
