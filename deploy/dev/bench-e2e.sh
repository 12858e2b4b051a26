#!/usr/bin/env bash
# `make bench-e2e` and `make bench-capacity`: a fresh database and Redis DB,
# api + worker from bin/, then `crmq bench e2e` (or `crmq bench capacity`
# when the first argument is `capacity`) with the other arguments given.
# Stops what it started. Expects bin/ built and services up (make does both).
#
# The bench is told the pids of api, worker, the postmaster and redis-server
# (CRMQ_BENCH_CPU) so `bench capacity` can charge their CPU to the jobs.
# BENCH_PROFILE=DIR also saves CPU profiles of api and worker in DIR (go
# tool pprof DIR/api.pprof), BENCH_PROFILE_SECONDS (20) long, starting
# BENCH_PROFILE_DELAY (3) seconds after the bench (the raw phase comes
# first: a delay of warm-up + duration + 2 s profiles the crmq phase).
#
# BENCH_API_PROCS and BENCH_WORKER_PROCS set GOMAXPROCS of api and worker
# (unset: Go's default, the machine's cores), e.g. 1 and 2 as deploy/k8s's
# CPU limits give them in a container.
set -euo pipefail
cd "$(dirname "$0")/../.."
# BENCH_BIN: where api, worker and crmq come from (another build, to
# compare); BENCH_CRMQ: the crmq that runs the bench itself.
: "${BENCH_BIN:=$PWD/bin}"
: "${BENCH_CRMQ:=$BENCH_BIN/crmq}"
PATH="$BENCH_BIN:$PATH"

bench=e2e
if [ "${1:-}" = capacity ] || [ "${1:-}" = e2e ]; then bench=$1; shift; fi

: "${BENCH_DB:=crmq_bench}"
: "${BENCH_REDIS_DB:=14}"
: "${CRMQ_POLL_INTERVAL:=20ms}"
: "${CRMQ_LOG_LEVEL:=info}"
: "${BENCH_PROFILE:=}"
: "${BENCH_PROFILE_DELAY:=3}"
: "${BENCH_PROFILE_SECONDS:=20}"
: "${BENCH_API_PROCS:=}"
: "${BENCH_WORKER_PROCS:=}"
base=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable}
server_url=${base%/*}/postgres
redis=${REDIS_URL:-redis://127.0.0.1:6379/0}

export DATABASE_URL="${base%/*}/$BENCH_DB?sslmode=disable"
export REDIS_URL="${redis%/*}/$BENCH_REDIS_DB"
export HTTP_ADDR=127.0.0.1:18080
export CRMQ_ADMIN_KEY=bench-admin-key-0123456789abcdef
export CRMQ_POLL_INTERVAL CRMQ_LOG_LEVEL CRMQ_CRON_ORPHANS=

psql "$server_url" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" -c "CREATE DATABASE $BENCH_DB" >/dev/null
redis-cli -u "$REDIS_URL" flushdb >/dev/null
crmq migrate 2>/dev/null

logs=$(mktemp -d)
env ${BENCH_API_PROCS:+GOMAXPROCS=$BENCH_API_PROCS} CRMQ_PPROF_ADDR=127.0.0.1:16060 api > "$logs/api.log" 2>&1 & api_pid=$!
env ${BENCH_WORKER_PROCS:+GOMAXPROCS=$BENCH_WORKER_PROCS} CRMQ_PPROF_ADDR=127.0.0.1:16061 worker > "$logs/worker.log" 2>&1 & worker_pid=$!
trap 'kill -TERM $api_pid $worker_pid 2>/dev/null; wait $api_pid $worker_pid 2>/dev/null; redis-cli -u "$REDIS_URL" flushdb >/dev/null' EXIT
for _ in $(seq 100); do curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

# CPU is read from /proc: Postgres and Redis count only when they run here.
cpu="api=$api_pid,worker=$worker_pid"
pg_dir=$(psql "$server_url" -Atc 'SHOW data_directory' 2>/dev/null || true)
if [ -n "$pg_dir" ] && pm=$(head -1 "$pg_dir/postmaster.pid" 2>/dev/null) && [ -d "/proc/$pm" ]; then cpu="$cpu,postgres=$pm"; fi
rp=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')
if [ -n "$rp" ] && [ -d "/proc/$rp" ]; then cpu="$cpu,redis=$rp"; fi
export CRMQ_BENCH_CPU=$cpu

key=$(crmq org create bench 2>/dev/null)
echo "api/worker logs: $logs; CRMQ_POLL_INTERVAL=$CRMQ_POLL_INTERVAL CRMQ_LOG_LEVEL=$CRMQ_LOG_LEVEL CRMQ_DB_BATCH_WAIT=${CRMQ_DB_BATCH_WAIT:-default} CRMQ_DB_BATCH_WAIT_RATE=${CRMQ_DB_BATCH_WAIT_RATE:-default} CRMQ_ORG_CONCURRENCY=${CRMQ_ORG_CONCURRENCY:-default} GOMAXPROCS api=${BENCH_API_PROCS:-default} worker=${BENCH_WORKER_PROCS:-default}; cpu: $cpu" >&2
if [ -n "$BENCH_PROFILE" ]; then
  mkdir -p "$BENCH_PROFILE"
  ( sleep "$BENCH_PROFILE_DELAY"
    curl -fsS -o "$BENCH_PROFILE/api.pprof" "http://127.0.0.1:16060/debug/pprof/profile?seconds=$BENCH_PROFILE_SECONDS" &
    curl -fsS -o "$BENCH_PROFILE/worker.pprof" "http://127.0.0.1:16061/debug/pprof/profile?seconds=$BENCH_PROFILE_SECONDS" &
    wait ) & prof_pid=$!
fi
"$BENCH_CRMQ" bench "$bench" --key "$key" "$@"
if [ -n "$BENCH_PROFILE" ]; then wait "$prof_pid" || true; fi
