#!/usr/bin/env bash
# `make bench-e2e`: a fresh database and Redis DB, api + worker from bin/,
# then `crmq bench e2e` with the arguments given (default: 500/s for 20 s).
# Stops what it started. Expects bin/ built and services up (make does both).
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/bin:$PATH"

: "${BENCH_DB:=crmq_bench}"
: "${BENCH_REDIS_DB:=14}"
: "${CRMQ_POLL_INTERVAL:=20ms}"
: "${CRMQ_LOG_LEVEL:=info}"
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
api > "$logs/api.log" 2>&1 & api_pid=$!
worker > "$logs/worker.log" 2>&1 & worker_pid=$!
trap 'kill -TERM $api_pid $worker_pid 2>/dev/null; wait $api_pid $worker_pid 2>/dev/null; redis-cli -u "$REDIS_URL" flushdb >/dev/null' EXIT
for _ in $(seq 100); do curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

key=$(crmq org create bench 2>/dev/null)
echo "api/worker logs: $logs; CRMQ_POLL_INTERVAL=$CRMQ_POLL_INTERVAL CRMQ_LOG_LEVEL=$CRMQ_LOG_LEVEL" >&2
crmq bench e2e --key "$key" "$@"
