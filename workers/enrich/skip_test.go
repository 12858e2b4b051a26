package enrich_test

import (
	"errors"

	"github.com/hibiken/asynq"
)

func isSkipRetry(err error) bool { return errors.Is(err, asynq.SkipRetry) }
