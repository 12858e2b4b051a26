package fair

import "context"

// TryAcquireCap is TryAcquire (marking a refused task), with the cap the
// admission script applied.
func (l *Limiter) TryAcquireCap(ctx context.Context, queue string, org int64, taskID string) (Admission, int64, error) {
	return l.tryAcquire(ctx, queue, org, taskID, true)
}

// Run is the middleware's run of one task (not its last attempt) under
// the org's cap.
func Run(ctx context.Context, l *Limiter, queue string, org int64, taskID string, fn func() error) error {
	return l.run(ctx, queue, org, taskID, "test", false, fn)
}

// KeptSlots counts the slots the org keeps on queue in this process.
func KeptSlots(l *Limiter, queue string, org int64) int {
	l.keptMu.Lock()
	defer l.keptMu.Unlock()
	return len(l.kept[markKey{queue, org}])
}
