package fair

import "context"

// TryAcquireCap is TryAcquire (marking a refused task), with the cap the
// admission script applied.
func (l *Limiter) TryAcquireCap(ctx context.Context, queue string, org int64, taskID string) (Admission, int64, error) {
	return l.tryAcquire(ctx, queue, org, taskID, true)
}
