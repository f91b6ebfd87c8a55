#!/usr/bin/env bash
# Tests scripts/services.sh's install logic, and scripts/lib/require.sh's messages, without
# a second machine:
#
#   scripts/test-services.sh        (scripts/test.sh runs it before the Rust build)
#
# Each case runs services.sh with PATH = a directory of stubs + a handful of real tools
# (bash, find, sed...; nothing else, so a package that is "not installed" really is not
# found), a fake /etc/postgresql and /usr/lib/postgresql under SERVICES_FS_ROOT, and a
# chosen `id -u`. "Installing" a package copies its stubs and files from a fake repository.
# The stubs that would change the machine (apt-get, pg_ctlcluster, pg_createcluster,
# redis-server, sudo) write their arguments to a log; the probes (pg_isready, psql,
# redis-cli) answer from the case's state files. A case asserts on that log, on the exit
# status, on stderr and on the fake pg_hba.conf.
#
# No network, no root changes, no real service touched (the real pg_*/redis-* are not on
# the PATH the script sees); everything lives in one temp dir, removed on exit, so it can
# run any number of times. Takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="$ROOT/scripts/services.sh"
REQUIRE="$ROOT/scripts/lib/require.sh"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/auuction-test-services.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

FAILED=0
CASES=0
CASE=""

# ---- the sandbox ------------------------------------------------------------------------
# The only real tools the scripts may see. A tool services.sh starts using without being
# listed here shows up as a failed case (command not found), not as a silent fallback to
# the real machine.
SYS="$TMP/sys"
mkdir "$SYS"
for tool in bash dirname basename find sed sort tail grep sleep cat mkdir cp touch; do
    ln -s "$(command -v "$tool")" "$SYS/$tool"
done

# What Debian's initdb writes for a new cluster (--auth-local peer --auth-host scram-sha-256),
# comments shortened: over TCP, every role needs a password.
DEBIAN_HBA='# Database administrative login by Unix domain socket
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256'

# stub NAME BODY: an executable in the fake repository's staging dir; BODY sees $CASE_DIR
# (the case's directory) and $FS (its fake file tree). `record` logs the command line.
STUBS="$TMP/stubs"
mkdir "$STUBS"
stub() {
    cat >"$STUBS/$1" <<EOF
#!$(command -v bash)
set -u
FS="\$CASE_DIR/fs"
STATE="\$CASE_DIR/state"
record() { local a line="\${0##*/}"; for a in "\$@"; do printf -v a '%q' "\$a"; line+=" \$a"; done; printf '%s\n' "\$line" >>"\$CASE_DIR/log"; }
$2
EOF
    chmod +x "$STUBS/$1"
}

stub id '[ "$1" = -u ] && cat "$STATE/uid"'
stub sudo 'record "$@"; exit 1'
stub pg_isready '[ -e "$STATE/pg_running" ]'
# Logs in when the first pg_hba.conf line the running server loaded that matches
# `host <db> postgres|all 127.0.0.1/32` says trust: what PostgreSQL itself does.
stub psql '[ -e "$STATE/pg_running" ] || exit 2
while read -r type db user addr method _; do
    [ "$type" = host ] && [ "$addr" = 127.0.0.1/32 ] || continue
    [ "$db" = all ] || [ "$db" = postgres ] || continue
    [ "$user" = all ] || [ "$user" = postgres ] || continue
    [ "$method" = trust ] && exit 0
    echo "psql: error: FATAL:  password authentication failed for user \"postgres\"" >&2
    exit 2
done <"$STATE/hba.loaded"
exit 2'
stub pg_ctlcluster 'record "$@"
[ "$1" = --skip-systemctl-redirect ] && shift
hba="$FS/etc/postgresql/$1/$2/pg_hba.conf"
[ -f "$hba" ] || { echo "Error: specified cluster $1 $2 does not exist" >&2; exit 1; }
case $3 in
start)
    [ -e "$STATE/pg_running" ] && { echo "Cluster is already running." >&2; exit 2; }
    touch "$STATE/pg_running" ;;
reload)
    [ -e "$STATE/pg_running" ] || { echo "pg_ctl: PID file does not exist" >&2; exit 1; } ;;
*) exit 1 ;;
esac
cp "$hba" "$STATE/hba.loaded"'
stub pg_createcluster 'record "$@"
mkdir -p "$FS/etc/postgresql/$1/$2"
cat "$CASE_DIR/../debian_hba" >"$FS/etc/postgresql/$1/$2/pg_hba.conf"'
stub redis-cli '[ "$*" = "-h 127.0.0.1 -p 6379 ping" ] && [ -e "$STATE/redis_running" ] && { echo PONG; exit 0; }
echo "Could not connect to Redis at 127.0.0.1:6379: Connection refused" >&2; exit 1'
stub redis-server 'record "$@"; touch "$STATE/redis_running"'
# Copies each package from the fake repository. Like apt in most containers (no systemd),
# it starts nothing: postgresql's postinst creates the cluster, stopped.
stub apt-get 'printf "DEBIAN_FRONTEND=%s " "${DEBIAN_FRONTEND:-}" >>"$CASE_DIR/log"; record "$@"
[ "$1" = install ] || exit 0
for p in "$@"; do
    case $p in -*|install) continue ;; esac
    [ -d "$CASE_DIR/../repo/$p" ] || { echo "E: Unable to locate package $p" >&2; exit 100; }
    cp -R "$CASE_DIR/../repo/$p/." "$CASE_DIR/"
done'
printf '%s\n' "$DEBIAN_HBA" >"$TMP/debian_hba"

# The fake repository: what each package puts on the machine (stubs into bin/, files into fs/).
REPO="$TMP/repo"
repo_pkg() { # PACKAGE STUB...
    local pkg=$1
    shift
    mkdir -p "$REPO/$pkg/bin"
    local s
    for s in "$@"; do cp "$STUBS/$s" "$REPO/$pkg/bin/"; done
}
repo_pkg postgresql-client pg_isready psql
repo_pkg postgresql pg_ctlcluster pg_createcluster
mkdir -p "$REPO/postgresql/fs/usr/lib/postgresql/15/bin" "$REPO/postgresql/fs/etc/postgresql/15/main"
touch "$REPO/postgresql/fs/usr/lib/postgresql/15/bin/postgres"
cp "$TMP/debian_hba" "$REPO/postgresql/fs/etc/postgresql/15/main/pg_hba.conf"
repo_pkg redis-server redis-server
repo_pkg redis-tools redis-cli
ALL_PACKAGES=(postgresql postgresql-client redis-server redis-tools)

# ---- cases ------------------------------------------------------------------------------
# new_case NAME UID [PACKAGE...]: a Debian machine (apt-get, id) with these packages
# installed, nothing running.
new_case() {
    CASE=$1
    CASES=$((CASES + 1))
    CASE_DIR="$TMP/$CASE"
    mkdir -p "$CASE_DIR/bin" "$CASE_DIR/state" "$CASE_DIR/fs" "$CASE_DIR/home"
    : >"$CASE_DIR/log"
    echo "$2" >"$CASE_DIR/state/uid"
    cp "$STUBS/id" "$STUBS/apt-get" "$CASE_DIR/bin/"
    shift 2
    local pkg
    for pkg in "$@"; do cp -R "$REPO/$pkg/." "$CASE_DIR/"; done
}
with_sudo() { cp "$STUBS/sudo" "$CASE_DIR/bin/"; }
without() { rm -f "$CASE_DIR/bin/$1"; }
pg_running() { # with the given pg_hba.conf loaded
    touch "$CASE_DIR/state/pg_running"
    cp "$CASE_DIR/fs/etc/postgresql/15/main/pg_hba.conf" "$CASE_DIR/state/hba.loaded"
}
redis_running() { touch "$CASE_DIR/state/redis_running"; }
hba() { printf '%s\n' "$CASE_DIR/fs/etc/postgresql/15/main/pg_hba.conf"; }
# A cluster whose pg_hba.conf already trusts postgres over 127.0.0.1 (a set-up dev box).
trusting_hba() { printf 'host all postgres 127.0.0.1/32 trust\n%s\n' "$DEBIAN_HBA" >"$(hba)"; }

# run_services [ENV=VALUE...]: services.sh in the sandbox; sets RC, OUT, ERR.
run_services() {
    RC=0
    env -i PATH="$CASE_DIR/bin:$SYS" HOME="$CASE_DIR/home" CASE_DIR="$CASE_DIR" \
        SERVICES_FS_ROOT="$CASE_DIR/fs" SERVICES_WAIT_SECONDS=1 "$@" \
        "$SYS/bash" "$SERVICES" >"$CASE_DIR/out" 2>"$CASE_DIR/err" || RC=$?
    ERR=$(<"$CASE_DIR/err")
    OUT=$(<"$CASE_DIR/out")
}

fail() {
    printf 'FAIL [%s]: %s\n' "$CASE" "$1" >&2
    [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /' >&2
    FAILED=1
}
expect_rc() { [ "$RC" -eq "$1" ] || fail "exit status $RC, expected $1" "$ERR"; }
# expect_log LINE...: exactly these commands, in this order, were run (none: nothing ran).
expect_log() {
    local want="" got
    (($# == 0)) || want=$(printf '%s\n' "$@")
    got=$(<"$CASE_DIR/log")
    [ "$got" = "$want" ] || fail "commands run" "$(diff <(echo "$want") <(echo "$got") || true)"
}
expect_err() { [[ $ERR == *"$1"* ]] || fail "stderr lacks: $1" "$ERR"; }
expect_err_lacks() { [[ $ERR != *"$1"* ]] || fail "stderr has: $1" "$ERR"; }
expect_err_count() { # TEXT N
    local n
    n=$(grep -cF -- "$1" "$CASE_DIR/err" || true)
    [ "$n" -eq "$2" ] || fail "stderr has '$1' $n times, expected $2" "$ERR"
}
expect_hba_unchanged() {
    cmp -s "$(hba)" "$CASE_DIR/hba.before" || fail "pg_hba.conf changed" "$(cat "$(hba)")"
}
snapshot_hba() { cp "$(hba)" "$CASE_DIR/hba.before"; }

START='pg_ctlcluster --skip-systemctl-redirect 15 main start'
RELOAD='pg_ctlcluster --skip-systemctl-redirect 15 main reload'
REDIS="redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"
INSTALL_ALL="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${ALL_PACKAGES[*]}"
TRUST='host all postgres 127.0.0.1/32 trust'

# -- installed and running: looks, changes nothing (as root and as a user)
for uid in 0 1000; do
    new_case "installed-running-uid$uid" "$uid" "${ALL_PACKAGES[@]}"
    trusting_hba
    pg_running
    redis_running
    snapshot_hba
    run_services
    expect_rc 0
    expect_log
    expect_err "PostgreSQL already running on 127.0.0.1:5432"
    expect_err "Redis already running on 127.0.0.1:6379"
    expect_hba_unchanged
done

# -- installed and stopped, as root: starts both, leaves a trusting pg_hba.conf alone
new_case installed-stopped-root 0 "${ALL_PACKAGES[@]}"
trusting_hba
snapshot_hba
run_services
expect_rc 0
expect_log "$START" "$REDIS"
expect_err "starting PostgreSQL 15 (cluster main)"
expect_err "PostgreSQL is ready"
expect_err "starting Redis on 127.0.0.1:6379"
expect_err "Redis is ready"
expect_hba_unchanged
run_services # again: both up now
expect_rc 0
expect_log "$START" "$REDIS"

# -- installed and stopped, without root: says what to run, starts nothing, never sudo
new_case installed-stopped-user 1000 "${ALL_PACKAGES[@]}"
with_sudo
run_services
expect_rc 1
expect_log
expect_err "services: PostgreSQL is not running on 127.0.0.1:5432"
expect_err "    sudo $SERVICES"
expect_err_count "that needs root" 1
expect_err_lacks "apt-get"

# -- missing, as root: one apt-get install, then create-by-postinst, start, let postgres in
new_case missing-root 0
run_services
expect_rc 0
expect_log "DEBIAN_FRONTEND= apt-get update" "$INSTALL_ALL" "$START" "$RELOAD" "$REDIS"
expect_err "installing ${ALL_PACKAGES[*]}"
expect_err "adding '$TRUST' to the top of $(hba)"
expect_err "the postgres role's login is ready"
[ "$(sed -n 2p "$(hba)")" = "$TRUST" ] || fail "trust line is not first in pg_hba.conf" "$(cat "$(hba)")"
[[ $(sed -n 1p "$(hba)") == "# Added by auuction's scripts/services.sh"*"never a production server's." ]] ||
    fail "no comment above the trust line" "$(cat "$(hba)")"
grep -qF 'scram-sha-256' "$(hba)" || fail "the cluster's own lines are gone" "$(cat "$(hba)")"
snapshot_hba
run_services # again: everything is there, nothing more is run or added
expect_rc 0
expect_log "DEBIAN_FRONTEND= apt-get update" "$INSTALL_ALL" "$START" "$RELOAD" "$REDIS"
expect_hba_unchanged

# -- missing, without root: the one command and the apt lines, once; nothing run
new_case missing-user 1000
with_sudo
run_services
expect_rc 1
expect_log
expect_err "services: not installed: ${ALL_PACKAGES[*]}"
expect_err_count "that needs root" 1
expect_err "    sudo $SERVICES"
expect_err "    apt-get update"
expect_err "    $INSTALL_ALL"
[ -z "$OUT" ] || fail "stdout is not empty" "$OUT"

# -- missing, without root and without sudo: su instead
new_case missing-user-no-sudo 1000
run_services
expect_rc 1
expect_log
expect_err "    su -c $SERVICES"
expect_err_lacks "sudo"

# -- only a part missing: redis-cli (redis-tools) alone, as root
new_case missing-redis-tools-root 0 postgresql postgresql-client redis-server
trusting_hba
pg_running
run_services
expect_rc 0
expect_log "DEBIAN_FRONTEND= apt-get update" \
    "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-tools" "$REDIS"

# -- missing, root, no apt-get: names what to install, runs nothing
new_case missing-no-apt 0
without apt-get
run_services
expect_rc 1
expect_log
expect_err "there is no apt-get here"

# -- running but refusing postgres without a password (Debian's default), as root:
#    the trust line goes first and the cluster reloads; a second run adds nothing
new_case refused-root 0 "${ALL_PACKAGES[@]}"
pg_running
redis_running
run_services
expect_rc 0
expect_log "$RELOAD"
[ "$(sed -n 2p "$(hba)")" = "$TRUST" ] || fail "trust line is not first in pg_hba.conf" "$(cat "$(hba)")"
run_services
expect_rc 0
expect_log "$RELOAD"
expect_err_count "letting postgres in" 0
[ "$(grep -cxF "$TRUST" "$(hba)")" -eq 1 ] || fail "trust line added more than once" "$(cat "$(hba)")"

# -- the same without root: says so, touches nothing
new_case refused-user 1000 "${ALL_PACKAGES[@]}"
with_sudo
pg_running
redis_running
snapshot_hba
run_services
expect_rc 1
expect_log
expect_err "refuses the postgres role without a password"
expect_err "    sudo $SERVICES"
expect_hba_unchanged

# -- the trust line is in pg_hba.conf but was never loaded (an earlier run stopped before
#    the reload), as root: reloads, does not add it twice
new_case trusted-not-loaded-root 0 "${ALL_PACKAGES[@]}"
trusting_hba
pg_running
cp "$TMP/debian_hba" "$CASE_DIR/state/hba.loaded"
redis_running
snapshot_hba
run_services
expect_rc 0
expect_log "$RELOAD"
expect_err "already has '$TRUST'; reloading PostgreSQL 15"
expect_hba_unchanged

# -- refused by a PostgreSQL that is not a Debian cluster (say, in a container): root
#    could not fix it either, so no sudo advice; nothing run
new_case refused-not-debian 1000 postgresql-client redis-server redis-tools
with_sudo
mkdir -p "$CASE_DIR/fs/etc/postgresql/15/main"
printf '%s\n' "$DEBIAN_HBA" >"$(hba)"
pg_running
rm -r "$CASE_DIR/fs/etc/postgresql"
redis_running
run_services
expect_rc 1
expect_log
expect_err "it is not a Debian cluster"
expect_err "or set DATABASE_URL"
expect_err_lacks "sudo"

# -- DATABASE_URL set: the caller's own role; pg_hba.conf is not the script's business
new_case database-url-set 0 "${ALL_PACKAGES[@]}"
pg_running
redis_running
snapshot_hba
run_services DATABASE_URL=postgres://me:secret@127.0.0.1:5432/auuction
expect_rc 0
expect_log
expect_hba_unchanged

# -- server installed without a cluster (create_main_cluster = false), as root
new_case no-cluster-root 0 "${ALL_PACKAGES[@]}"
rm -r "$CASE_DIR/fs/etc/postgresql"
run_services
expect_rc 0
expect_log "pg_createcluster 15 main" "$START" "$RELOAD" "$REDIS"
expect_err "creating the PostgreSQL 15 cluster main"

# ---- scripts/lib/require.sh -------------------------------------------------------------
# run_require UID TOOL...: `require TOOL...` in the sandbox; sets RC, ERR.
run_require() {
    local uid=$1
    shift
    echo "$uid" >"$CASE_DIR/state/uid"
    RC=0
    env -i PATH="$CASE_DIR/bin:$SYS" HOME="$CASE_DIR/home" CASE_DIR="$CASE_DIR" \
        "$SYS/bash" -c '. "$1"; shift; require "$@"; echo all-found' require "$REQUIRE" "$@" \
        >"$CASE_DIR/out" 2>"$CASE_DIR/err" || RC=$?
    ERR=$(<"$CASE_DIR/err")
    OUT=$(<"$CASE_DIR/out")
}
tool() { printf '#!%s\n%s\n' "$(command -v bash)" "${2:-exit 0}" >"$CASE_DIR/bin/$1" && chmod +x "$CASE_DIR/bin/$1"; }

new_case require-nothing 1000
run_require 1000 cargo cc node npm curl python3
expect_rc 1
[ "$OUT" != all-found ] || fail "went on with tools missing"
expect_err "cargo (the Rust toolchain) is missing. Install it with rustup: curl https://sh.rustup.rs -sSf | sh"
expect_err "Install it: sudo apt-get install -y build-essential"
expect_err "node (Node.js 20 or newer"
expect_err "Install it: sudo apt-get install -y npm"
expect_err "Install it: sudo apt-get install -y curl"
expect_err "Install it: sudo apt-get install -y python3"
expect_err_lacks "command not found"
[ "$(grep -c . "$CASE_DIR/err")" -eq 6 ] || fail "not one line per missing tool" "$ERR"

new_case require-as-root 0
run_require 0 cc
expect_err "Install it: apt-get install -y build-essential"
expect_err_lacks "sudo"

new_case require-rustup-not-on-path 1000
mkdir -p "$CASE_DIR/home/.cargo/bin"
tool ../home/.cargo/bin/cargo
run_require 1000 cargo
expect_rc 1
expect_err 'cargo is installed in ~/.cargo/bin but not on PATH. Run: . "$HOME/.cargo/env"'

new_case require-old-node 1000
tool node 'echo v18.19.0'
run_require 1000 node
expect_rc 1
expect_err "node v18.19.0 is too old"

new_case require-all-there 1000
for t in cargo cc npm curl python3; do tool "$t"; done
tool node 'echo v20.20.2'
run_require 1000 cargo cc node npm curl python3
expect_rc 0
[ "$OUT" = all-found ] || fail "stopped with every tool there" "$ERR"
[ -z "$ERR" ] || fail "printed something with every tool there" "$ERR"

if [ "$FAILED" -ne 0 ]; then
    echo "test-services: FAILED" >&2
    exit 1
fi
echo "test-services: $CASES cases passed"
