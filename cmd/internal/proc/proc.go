// Package proc holds what the crmq processes share at start and stop:
// connecting to Redis and Postgres from config, signals, asynq logging.
package proc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hibiken/asynq"
)

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// RedisOpt turns REDIS_URL into asynq's connection options.
func RedisOpt(url string) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return opt, nil
}

// AsynqLogger routes asynq's own logs through slog.
type AsynqLogger struct{ L *slog.Logger }

func (a AsynqLogger) Debug(args ...any) { a.L.Debug(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Info(args ...any)  { a.L.Info(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Warn(args ...any)  { a.L.Warn(fmt.Sprint(args...), "component", "asynq") }
func (a AsynqLogger) Error(args ...any) { a.L.Error(fmt.Sprint(args...), "component", "asynq") }

// Fatal is called by asynq only when it cannot go on; exit as it expects.
func (a AsynqLogger) Fatal(args ...any) {
	a.L.Error(fmt.Sprint(args...), "component", "asynq", "fatal", true)
	os.Exit(1)
}

// Fatal logs a start-up error and exits; used by main functions only.
func Fatal(log *slog.Logger, msg string, err error) {
	log.Error(msg, "err", err)
	os.Exit(1)
}
