-- +goose Up
-- A job row is inserted once and updated twice or more (running, then its
-- outcome). Room on each page lets those updates be HOT (no index writes,
-- no index bloat), and eager autovacuum keeps up at hundreds of jobs/s.
ALTER TABLE jobs SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);

-- +goose Down
ALTER TABLE jobs RESET (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
