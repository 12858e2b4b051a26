package store

import (
	"context"
	"fmt"
)

// StatementStat is one normalised statement of this database as
// pg_stat_statements counts it since the last reset.
type StatementStat struct {
	Query  string  `db:"query" json:"query"`
	Calls  int64   `db:"calls" json:"calls"`
	TimeMS float64 `db:"time_ms" json:"time_ms"` // total execution time
}

// EnableStatementStats creates the pg_stat_statements view in this
// database and resets its counts for this database. It fails when the
// server was not started with the library preloaded (deploy/dev/services.sh
// does that), or the role may not create the extension; benchmarks then
// report statements as unknown.
//
// It also forgets the statements of databases that no longer exist (every
// test and every bench run makes and drops one): they count toward
// pg_stat_statements.max, and once it is reached Postgres evicts entries
// while holding a lock that the end of every statement waits for.
func (db *DB) EnableStatementStats(ctx context.Context) error {
	if _, err := db.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	if _, err := db.ExecContext(ctx, `
		SELECT pg_stat_statements_reset(0, gone.dbid, 0) FROM (
			SELECT DISTINCT dbid FROM pg_stat_statements
			WHERE dbid NOT IN (SELECT oid FROM pg_database)) gone`); err != nil {
		return fmt.Errorf("forget statements of dropped databases: %w", err)
	}
	return db.ResetStatementStats(ctx)
}

// ResetStatementStats zeroes pg_stat_statements for this database only.
func (db *DB) ResetStatementStats(ctx context.Context) error {
	_, err := db.ExecContext(ctx, `SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)`)
	if err != nil {
		return fmt.Errorf("reset pg_stat_statements: %w", err)
	}
	return nil
}

// StatementStats lists this database's statements since the last reset,
// most called first, leaving out the ones reading or resetting the
// statistics themselves and transaction control (BEGIN, COMMIT).
func (db *DB) StatementStats(ctx context.Context) ([]StatementStat, error) {
	var out []StatementStat
	err := db.SelectContext(ctx, &out, `
		SELECT query, calls, total_exec_time AS time_ms FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND query NOT LIKE '%pg_stat_statements%'
		ORDER BY calls DESC, query`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	return out, nil
}

// DeleteJobsOfQueue removes the job rows of one queue; benchmarks use it
// to drop the rows they wrote straight to the table.
func (db *DB) DeleteJobsOfQueue(ctx context.Context, queue string) (int64, error) {
	res, err := db.ExecContext(ctx, `DELETE FROM jobs WHERE queue = $1`, queue)
	if err != nil {
		return 0, fmt.Errorf("delete jobs of queue %s: %w", queue, err)
	}
	return res.RowsAffected()
}
