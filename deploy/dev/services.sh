#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable for `make run` and `make test`.
#
# If DATABASE_URL / REDIS_URL answer, they are used as they are. Otherwise a
# private PostgreSQL (initdb, trust auth, run as the postgres user) and a
# redis-server are started on the default local ports, installing the Debian
# packages first when the binaries are missing. Idempotent: a second call
# finds both answering and does nothing.
set -euo pipefail

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/crmq?sslmode=disable}"
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
: "${CRMQ_DEV_DIR:=/tmp/crmq-dev}"

log() { echo "services: $*" >&2; }

# host and port out of a URL like scheme://user@host:port/...
url_host() { local r=${1#*://}; r=${r#*@}; r=${r%%/*}; r=${r%%\?*}; echo "${r%%:*}"; }
url_port() { local r=${1#*://}; r=${r#*@}; r=${r%%/*}; r=${r%%\?*}; [[ $r == *:* ]] && echo "${r##*:}" || echo "$2"; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then log "need $* but not root: install it and retry"; exit 1; fi
  log "installing $*"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}

ensure_postgres() {
  local host port bin data extra
  host=$(url_host "$DATABASE_URL"); port=$(url_port "$DATABASE_URL" 5432)
  if pg_isready -q -h "$host" -p "$port" 2>/dev/null; then return; fi
  bin=$(pg_bin) || { apt_install postgresql; bin=$(pg_bin); }
  command -v pg_isready >/dev/null || PATH="$bin:$PATH"
  data="$CRMQ_DEV_DIR/pg-$port"
  mkdir -p "$CRMQ_DEV_DIR"; chmod 755 "$CRMQ_DEV_DIR"
  as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb $data"
    mkdir -p "$data"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$data"
    as_pg "'$bin/initdb' -D '$data' -U postgres --auth=trust -E UTF8 >/dev/null"
  fi
  # pg_stat_statements (in the server package) lets `crmq bench capacity`
  # count the statements each job costs; it must be preloaded at start.
  extra=""
  [ -f "$(dirname "$bin")/lib/pg_stat_statements.so" ] && extra="-c shared_preload_libraries=pg_stat_statements"
  log "starting postgres on $host:$port"
  as_pg "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -t 60 \
    -o \"-p $port -c listen_addresses=$host -k '$data' -c max_connections=300 -c fsync=off $extra\" start >/dev/null"
  pg_isready -q -h "$host" -p "$port" -t 30 || { log "postgres did not start; see $data/server.log"; exit 1; }
}

ensure_redis() {
  local host port
  host=$(url_host "$REDIS_URL"); port=$(url_port "$REDIS_URL" 6379)
  command -v redis-server >/dev/null || apt_install redis-server
  if redis-cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG; then return; fi
  mkdir -p "$CRMQ_DEV_DIR/redis-$port"
  log "starting redis on $host:$port"
  # AOF on so a restart (the fault tests do one) keeps accepted tasks;
  # rewritten every 512 MB of writes, not 64 (README: Redis persistence).
  redis-server --daemonize yes --bind "$host" --port "$port" --databases 64 \
    --dir "$CRMQ_DEV_DIR/redis-$port" --appendonly yes --appendfsync everysec --save '' \
    --auto-aof-rewrite-min-size 512mb \
    --logfile "$CRMQ_DEV_DIR/redis-$port/redis.log"
  for _ in $(seq 50); do
    redis-cli -h "$host" -p "$port" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  log "redis did not start; see $CRMQ_DEV_DIR/redis-$port/redis.log"; exit 1
}

command -v pg_isready >/dev/null || { b=$(pg_bin) && PATH="$b:$PATH"; } || true
ensure_postgres
ensure_redis
