#!/usr/bin/env bash
# `make run`: migrate, load the demo org, and run the Procfile's processes
# (api, worker, scheduler) until Ctrl-C, which stops all three cleanly.
# Expects bin/ built and Redis/Postgres reachable (make run does both).
set -euo pipefail
cd "$(dirname "$0")/../.."
PATH="$PWD/bin:$PATH"

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable}"
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
: "${HTTP_ADDR:=127.0.0.1:8080}"
: "${CRMQ_LOG_FORMAT:=text}"
: "${CRMQ_WORKER_METRICS_ADDR:=127.0.0.1:9091}"
# Segment exports go to a local directory under .dev/ (its temporary files
# beside it: .dev/ may be on another filesystem than /tmp).
: "${CRMQ_EXPORT_BUCKET:=file://$PWD/.dev/exports?create_dir=true&no_tmp_dir=true}"
export DATABASE_URL REDIS_URL HTTP_ADDR CRMQ_LOG_FORMAT CRMQ_WORKER_METRICS_ADDR CRMQ_EXPORT_BUCKET
# Enrichment demo: fixture company sites on loopback, which this dev
# config alone lets the enrichment fetcher reach (the guard stays on for
# every other address; production leaves the allow-list empty).
: "${CRMQ_DEMO_SITES:=127.0.0.1:8091}"
: "${CRMQ_ENRICH_ALLOW_HOSTS:=127.0.0.1/32}"
export CRMQ_ENRICH_ALLOW_HOSTS

# The admin key: kept in .dev/ so it survives restarts, unless given.
if [ -z "${CRMQ_ADMIN_KEY:-}" ]; then
  mkdir -p .dev
  [ -s .dev/admin-key ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dev/admin-key
  CRMQ_ADMIN_KEY=$(cat .dev/admin-key)
fi
export CRMQ_ADMIN_KEY

# Create the database named in DATABASE_URL when it does not exist.
db=${DATABASE_URL##*/}; db=${db%%\?*}
server_url=${DATABASE_URL%/*}/postgres
[[ $DATABASE_URL == *\?* ]] && server_url="$server_url?${DATABASE_URL#*\?}"
if ! psql "$server_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql "$server_url" -qc "CREATE DATABASE \"$db\"" >/dev/null
fi

crmq migrate
demo_key=$(crmq seed --sites "$CRMQ_DEMO_SITES")

pids=()
crmq demo-sites --addr "$CRMQ_DEMO_SITES" > >(sed -u "s/^/[sites] /") 2>&1 &
pids+=($!)
stop() {
  trap - INT TERM
  echo "stopping api, worker, scheduler and the demo sites..." >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

# Every Procfile line but release (done above) becomes a process.
while IFS=: read -r name cmd; do
  [ -z "$name" ] || [ "$name" = release ] && continue
  cmd=${cmd# }
  $cmd > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
done < Procfile

for _ in $(seq 100); do
  curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

crmq is running (Ctrl-C stops it)
  API:        http://$HTTP_ADDR
  demo key:   $demo_key
  admin key:  $CRMQ_ADMIN_KEY
  dashboard:  http://$HTTP_ADDR/monitoring/   (user: any, password: the admin key)
  metrics:    http://$HTTP_ADDR/metrics       (admin key)
  try:        curl -s -H "Authorization: Bearer $demo_key" -H 'Content-Type: application/json' \
                -d '{"type":"system:ping"}' http://$HTTP_ADDR/v1/jobs
  enrich:     curl -s -H "Authorization: Bearer $demo_key" -H 'Content-Type: application/json' \
                -d '{"account_id":"site-northwind"}' http://$HTTP_ADDR/v1/enrichments
              (demo sites from $CRMQ_DEMO_SITES: accounts site-northwind, site-bluefern, site-pressly, site-closed)

MSG
wait "${pids[@]}"
