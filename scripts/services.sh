#!/usr/bin/env bash
# Makes the local PostgreSQL and Redis that the demo and the tests use ready: installed,
# running, and PostgreSQL letting the `postgres` role in over 127.0.0.1 without a password,
# because the defaults connect with postgres://postgres@127.0.0.1:5432/... (no password).
# Idempotent: when both answer and the login works, it changes nothing.
#
#   scripts/services.sh
#
# On Debian/Ubuntu, what it may do, in this order:
#   1. install what is missing: apt-get update, then
#      apt-get install -y --no-install-recommends postgresql postgresql-client redis-server redis-tools
#      (only the missing ones);
#   2. create the cluster if the server is installed without one (pg_createcluster VERSION main);
#   3. start the cluster (pg_ctlcluster --skip-systemctl-redirect VERSION main start);
#   4. add one `trust` line for the postgres role over 127.0.0.1 to the top of the cluster's
#      pg_hba.conf and reload, if the login is refused;
#   5. start Redis (redis-server --daemonize yes ..., no persistence).
# Steps 1-4 need root. Without root, when any of them is needed, it says what is wrong,
# prints the one command to run (sudo scripts/services.sh) and stops before changing
# anything. It never calls sudo itself: sudo may stop halfway through a script to ask for
# a password, or not be configured at all.
#
# Nothing in the server uses Redis yet (see docs/deployment.md); it is kept ready here
# for the multi-node fan-out it is meant for.
#
# Knobs: SERVICES_PG_PORT / SERVICES_REDIS_PORT (default 5432 / 6379) change the ports
# checked; SERVICES_WAIT_SECONDS (30) how long to wait for a started service. When
# DATABASE_URL is set, the caller chose its own database and role: the postgres role's
# login is then not checked, and pg_hba.conf is never touched.
#
# Testing: every outside command (id, apt-get, pg_isready, psql, pg_ctlcluster,
# redis-cli, redis-server, find, ...) is looked up through PATH, and SERVICES_FS_ROOT
# (empty by default) prefixes /etc/postgresql and /usr/lib/postgresql; that is how
# scripts/test-services.sh runs every branch with stubs and a fake file tree.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=${SERVICES_PG_PORT:-5432}
REDIS_HOST=127.0.0.1
REDIS_PORT=${SERVICES_REDIS_PORT:-6379}
# Seconds to wait for each service after starting it. PostgreSQL replays its WAL after an
# unclean stop, which can take a while on a slow disk.
WAIT_SECONDS=${SERVICES_WAIT_SECONDS:-30}
PG_ETC=${SERVICES_FS_ROOT:-}/etc/postgresql
PG_LIB=${SERVICES_FS_ROOT:-}/usr/lib/postgresql
# Trust (no password) for one role, from this machine's loopback address only: the
# setting for a development box, where the only client is the developer's own test run.
# Never put it on a production server (docker-compose.yml gives that one a password).
HBA_LINE="host all postgres $PG_HOST/32 trust"
HBA_COMMENT="# Added by auuction's scripts/services.sh: the demo and the tests log in as postgres over $PG_HOST without a password. A development box's setting, never a production server's."

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

pg_up() { have pg_isready && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }
redis_up() { have redis-cli && [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
# -X: no ~/.psqlrc; -w: never prompt for a password (a refusal must fail, not hang).
pg_login_works() {
    psql -X -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1
}
# Only the defaults' login is checked: see DATABASE_URL above.
check_login() { [ -z "${DATABASE_URL:-}" ]; }

# The newest major version with a `main` cluster under /etc/postgresql (Debian's layout),
# or nothing. (`|| true`: no such directory is an answer, not an error for pipefail.)
pg_cluster_version() {
    { find "$PG_ETC" -mindepth 2 -maxdepth 2 -type d -name main -printf '%P\n' 2>/dev/null || true; } |
        sed 's:/main$::' | sort -V | tail -n1
}
# The newest installed server version (/usr/lib/postgresql/VERSION/bin/postgres), or nothing.
pg_server_version() {
    { find "$PG_LIB" -mindepth 3 -maxdepth 3 -path '*/bin/postgres' -printf '%P\n' 2>/dev/null || true; } |
        sed 's:/bin/postgres$::' | sort -V | tail -n1
}

# wait_for WHAT CHECK_FUNCTION
wait_for() {
    local what=$1 check=$2 i
    for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
        if "$check"; then
            log "$what is ready"
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# ---- 1. Look, change nothing ------------------------------------------------------------
# Everything that needs doing is decided first, so that without root the script can list
# it all at once and stop before starting anything.
declare -a PACKAGES=() PROBLEMS=()
if ! pg_up && [ -z "$(pg_server_version)" ]; then
    PACKAGES+=(postgresql)
fi
# pg_isready and psql: the checks here, test.sh and the load-test scripts use them.
if ! have pg_isready || ! have psql; then
    PACKAGES+=(postgresql-client)
fi
if ! redis_up && ! have redis-server; then
    PACKAGES+=(redis-server)
fi
if ! have redis-cli; then
    PACKAGES+=(redis-tools)
fi
if ((${#PACKAGES[@]})); then
    PROBLEMS+=("not installed: ${PACKAGES[*]}")
    have apt-get ||
        die "not installed: ${PACKAGES[*]}, and there is no apt-get here. Install PostgreSQL (server and client) and Redis (server and redis-cli) with this system's package manager, then run this again."
fi

# What root could not fix either stops here, root or not, rather than after a sudo.
if pg_up; then
    log "PostgreSQL already running on $PG_HOST:$PG_PORT"
    if check_login && ! pg_login_works; then
        [ -n "$(pg_cluster_version)" ] ||
            die "PostgreSQL on $PG_HOST:$PG_PORT refuses the postgres role without a password, and it is not a Debian cluster (nothing under $PG_ETC) that this script could change. Let postgres in from $PG_HOST without a password (pg_hba.conf: $HBA_LINE), or set DATABASE_URL to a role and password it accepts."
        PROBLEMS+=("PostgreSQL on $PG_HOST:$PG_PORT refuses the postgres role without a password")
    fi
elif [ -n "$(pg_server_version)" ]; then
    have pg_ctlcluster ||
        die "PostgreSQL is not running on $PG_HOST:$PG_PORT and pg_ctlcluster (Debian's postgresql-common) is missing: start PostgreSQL yourself"
    PROBLEMS+=("PostgreSQL is not running on $PG_HOST:$PG_PORT")
fi

# ---- 2. Without root: say what to run, once, and stop -----------------------------------
if ((${#PROBLEMS[@]})) && ! is_root; then
    for problem in "${PROBLEMS[@]}"; do
        log "$problem"
    done
    printf -v self_q '%q' "$SELF"
    if have sudo; then
        run_as_root="sudo $self_q"
    else
        run_as_root="su -c $self_q"
    fi
    {
        echo "services: that needs root. Run this once, then your command again:"
        echo
        echo "    $run_as_root"
        echo
        if ((${#PACKAGES[@]})); then
            echo "  As root it runs"
            echo "    apt-get update"
            echo "    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES[*]}"
            echo "  and starts PostgreSQL and Redis if they are down; if PostgreSQL refuses the"
        else
            echo "  As root it starts PostgreSQL and Redis if they are down; if PostgreSQL refuses the"
        fi
        echo "  postgres role over $PG_HOST without a password, it adds one line letting it in at the"
        echo "  top of /etc/postgresql/VERSION/main/pg_hba.conf (a development box's setting) and reloads."
    } >&2
    exit 1
fi

# ---- 3. Change what needs changing ------------------------------------------------------
if ((${#PACKAGES[@]})); then
    log "installing ${PACKAGES[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
fi

# Debian's packages start PostgreSQL where systemd runs, not in most containers, so it
# may be up now even if it was down before the install.
PG_VERSION=""
if ! pg_up; then
    have pg_ctlcluster ||
        die "PostgreSQL is not running on $PG_HOST:$PG_PORT and pg_ctlcluster (Debian's postgresql-common) is missing: start PostgreSQL yourself"
    PG_VERSION=$(pg_cluster_version)
    if [ -z "$PG_VERSION" ]; then
        PG_VERSION=$(pg_server_version)
        [ -n "$PG_VERSION" ] || die "no PostgreSQL server under $PG_LIB after installing it"
        log "creating the PostgreSQL $PG_VERSION cluster main"
        pg_createcluster "$PG_VERSION" main >/dev/null || die "pg_createcluster $PG_VERSION main failed"
    fi
    log "starting PostgreSQL $PG_VERSION (cluster main)"
    # --skip-systemctl-redirect: start it directly, also where systemd is absent (containers).
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start ||
        die "could not start PostgreSQL $PG_VERSION/main (see /var/log/postgresql/)"
    wait_for PostgreSQL pg_up || die "PostgreSQL did not become ready within ${WAIT_SECONDS}s"
fi

if check_login && ! pg_login_works; then
    # As root only: without root, a refused login stopped the script in 2., and a stopped or
    # missing PostgreSQL too, so it was not started or installed here. Kept as a guard.
    is_root || die "PostgreSQL on $PG_HOST:$PG_PORT refuses the postgres role without a password; run: sudo $SELF"
    [ -n "$PG_VERSION" ] || PG_VERSION=$(pg_cluster_version)
    hba="$PG_ETC/$PG_VERSION/main/pg_hba.conf"
    [ -f "$hba" ] || die "PostgreSQL refuses the postgres role without a password, and there is no $hba to change"
    if grep -qxF "$HBA_LINE" "$hba"; then
        # Added by an earlier run that did not get to the reload (or by hand): never twice.
        log "$hba already has '$HBA_LINE'; reloading PostgreSQL $PG_VERSION"
    else
        log "letting postgres in over $PG_HOST without a password: adding '$HBA_LINE' to the top of $hba"
        # pg_hba.conf is read top down and the first matching line wins, so the line goes
        # first. Rewritten in place (not replaced by a new file) to keep its owner and mode.
        old_hba=$(<"$hba")
        printf '%s\n' "$HBA_COMMENT" "$HBA_LINE" "" "$old_hba" >"$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload ||
        die "could not reload PostgreSQL $PG_VERSION/main"
    wait_for "the postgres role's login" pg_login_works ||
        die "PostgreSQL still refuses the postgres role over $PG_HOST:$PG_PORT after the reload: is $hba the configuration of the server on port $PG_PORT?"
fi

if redis_up; then
    log "Redis already running on $REDIS_HOST:$REDIS_PORT"
else
    log "starting Redis on $REDIS_HOST:$REDIS_PORT"
    # No persistence: test data is thrown away anyway.
    redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no >/dev/null ||
        die "could not start redis-server"
    wait_for Redis redis_up || die "Redis did not become ready within ${WAIT_SECONDS}s"
fi
