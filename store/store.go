// Package store is crmq's only speaker of SQL: Postgres through sqlx and
// lib/pq, with goose migrations embedded in the binary. Every query that
// reads tenant data filters by org id.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Sentinel errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// DB is the Postgres handle shared by the API, the workers and the CLI.
type DB struct {
	*sqlx.DB
	url string // for copyConns

	copyOnce sync.Once
	copyPool *pgxpool.Pool // ExportCSV's connections, made on first use
	copyErr  error
	stmts    sync.Map // query -> *sqlx.Stmt, for the statements every job runs
	jobs     jobBatchers
	watch    atomic.Pointer[jobWatch] // set by WatchJobs (API processes)
}

// prepared returns a prepared statement for a hot query, preparing it on
// first use. database/sql re-prepares it on each pooled connection as
// needed, so Postgres parses and plans it once per connection, not per job.
func (db *DB) prepared(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if st, ok := db.stmts.Load(query); ok {
		return st.(*sqlx.Stmt), nil
	}
	st, err := db.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sqlx.Stmt), nil
	}
	return st, nil
}

// Open connects to Postgres and checks the connection.
func Open(ctx context.Context, url string, maxConns int) (*DB, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if maxConns > 0 {
		db.SetMaxOpenConns(maxConns)
		db.SetMaxIdleConns(maxConns)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	out := &DB{DB: db, url: url}
	out.jobs = newJobBatchers(out)
	return out, nil
}

// copyMaxConns bounds the connections ExportCSV holds beside the pool:
// one per export running in this process.
const copyMaxConns = 4

// copyConns is the pool ExportCSV takes connections from: pgx's, since
// lib/pq cannot read COPY TO. Its connections are kept between exports:
// a fresh Postgres backend reads a large table measurably slower than one
// that has read it before (a million-row export took about 0.5 s longer
// on a new connection, here).
func (db *DB) copyConns(ctx context.Context) (*pgxpool.Pool, error) {
	db.copyOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(db.url)
		if err != nil {
			db.copyErr = fmt.Errorf("export connections: %w", err)
			return
		}
		cfg.MaxConns = copyMaxConns
		cfg.MaxConnIdleTime = 5 * time.Minute
		db.copyPool, db.copyErr = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	})
	return db.copyPool, db.copyErr
}

// Close closes the pool and ExportCSV's connections.
func (db *DB) Close() error {
	db.copyOnce.Do(func() {}) // no pool made after this
	if db.copyPool != nil {
		db.copyPool.Close()
	}
	return db.DB.Close()
}

// Migrate applies every embedded migration not yet applied. Running it
// again is a no-op, and two processes running it at once are serialised by
// goose's session lock.
func Migrate(ctx context.Context, db *sql.DB) error {
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	for _, r := range results {
		slog.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// isUniqueViolation tells whether err is Postgres' unique_violation.
func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}

// isForeignKeyViolation: a row refers to one that does not exist.
func isForeignKeyViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23503"
}

// notFound turns sql.ErrNoRows into ErrNotFound and leaves other errors be.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fieldErrors renders a map of what is wrong, by field, as one stable
// message: the fields in order, after prefix.
func fieldErrors(prefix string, e map[string]string) string {
	parts := make([]string, 0, len(e))
	for _, k := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, k+": "+e[k])
	}
	return prefix + ": " + strings.Join(parts, "; ")
}
