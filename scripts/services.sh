#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis the tests use, if they are not already running.
# Idempotent: running it again when both answer does nothing.
#
#   scripts/services.sh
#
# Expects Debian/Ubuntu packages (postgresql, redis-server) on this machine, e.g.
#   apt-get install -y postgresql redis-server
# and PostgreSQL trusting local TCP connections for the `postgres` role, as the tests
# connect with postgres://postgres@127.0.0.1:5432/... (no password).
# SERVICES_PG_PORT / SERVICES_REDIS_PORT change the ports checked (default 5432 / 6379).
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${SERVICES_PG_PORT:-5432}
REDIS_HOST=127.0.0.1
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}
# Seconds to wait for each service after starting it. PostgreSQL replays its WAL after an
# unclean stop, which can take a while on a slow disk.
WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-30}

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

# wait_for NAME CHECK_FUNCTION
wait_for() {
    local name=$1 check=$2 i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        if "$check"; then
            log "$name is ready"
            return 0
        fi
        sleep 0.5
    done
    die "$name did not become ready within ${WAIT_SECONDS}s"
}

start_postgres() {
    command -v pg_isready >/dev/null 2>&1 ||
        die "PostgreSQL is not installed (no pg_isready). Install it: apt-get install -y postgresql"
    if pg_up; then
        log "PostgreSQL already running on $PG_HOST:$PG_PORT"
        return 0
    fi
    command -v pg_ctlcluster >/dev/null 2>&1 ||
        die "PostgreSQL is not running on $PG_HOST:$PG_PORT and pg_ctlcluster is missing; install the Debian package (apt-get install -y postgresql) or start PostgreSQL yourself"
    if [ ! -d /etc/postgresql ] || [ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]; then
        die "PostgreSQL is not installed (no cluster under /etc/postgresql). Install it: apt-get install -y postgresql"
    fi
    # The newest installed major version, if several are present.
    local version
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n1)
    log "starting PostgreSQL $version (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        die "could not start PostgreSQL $version/main (see /var/log/postgresql/)"
    wait_for PostgreSQL pg_up
}

start_redis() {
    if command -v redis-cli >/dev/null 2>&1 && redis_up; then
        log "Redis already running on $REDIS_HOST:$REDIS_PORT"
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 ||
        die "Redis is not installed (no redis-server). Install it: apt-get install -y redis-server"
    command -v redis-cli >/dev/null 2>&1 ||
        die "redis-cli is missing. Install it: apt-get install -y redis-tools"
    log "starting Redis on $REDIS_HOST:$REDIS_PORT"
    # No persistence: test data is thrown away anyway.
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no >/dev/null ||
        die "could not start redis-server"
    wait_for Redis redis_up
}

start_postgres
start_redis
