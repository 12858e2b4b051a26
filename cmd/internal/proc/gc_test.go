package proc

import (
	"os"
	"runtime/debug"
	"testing"
)

// Without GOGC in the environment a crmq process collects at GCPercent;
// with it, the operator's value (already applied by the runtime) stays.
func TestGCDefaultAppliesOnlyWithoutGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "150")
	SetGCDefault()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the GC target became %d; want it left alone", got)
	}

	if err := os.Unsetenv("GOGC"); err != nil { // t.Setenv restores it after
		t.Fatal(err)
	}
	SetGCDefault()
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("without GOGC, the GC target is %d; want %d", got, GCPercent)
	}
}
