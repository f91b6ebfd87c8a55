#!/usr/bin/env bash
# Smoke test of the load tester: builds the server and auuction-loadtest, starts the server on
# a free port with a fresh database, runs every scenario for a few seconds at tiny sizes and
# fails if any post-run check fails (lost, duplicated or mis-priced bids). Speeds are not
# judged here: CI boxes are noisy.
#
#   scripts/loadtest-smoke.sh            # dev build (quick to compile)
#   PROFILE=release scripts/loadtest-smoke.sh
#   SKIP_BUILD=1 scripts/loadtest-smoke.sh  # use what is already built (scripts/test.sh)
#
# Needs Postgres at PG_URL (default postgres://postgres@127.0.0.1:5432) and python3 (for a
# free port).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${PROFILE:-dev}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
DB_NAME="auuction_loadtest_smoke_$$_${RANDOM}"

if [ "$PROFILE" = "release" ]; then
    [ -n "${SKIP_BUILD:-}" ] || cargo build --release -p auuction -p auuction-loadtest
    BIN=target/release
else
    [ -n "${SKIP_BUILD:-}" ] || cargo build -p auuction -p auuction-loadtest
    BIN=target/debug
fi

# shellcheck source=lib/scratch-server.sh
. scripts/lib/scratch-server.sh

# Items come from the catalog API; a server without one (a development tree before the
# catalog landed) gets them inserted into its own scratch database instead.
if [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE_URL/api/items")" = "404" ]; then
    echo "note: no catalog API on this server; inserting the smoke test's items directly" >&2
    export AUUCTION_LOADTEST_DEV_DATABASE_URL="$DATABASE_URL"
fi

# The scratch database is ours: the close and the race also check rows the API does not
# show (win and reoffer commitments).
export AUUCTION_LOADTEST_CHECK_DATABASE_URL="$DATABASE_URL"

LT="$BIN/auuction-loadtest"
OUT="${LOADTEST_OUT:-$WORK/reports}"
mkdir -p "$OUT"
run() {
    local name=$1
    shift
    echo "== loadtest $name"
    "$LT" --quiet --json "$OUT/$name.json" --html "$OUT/$name.html" "$@"
}
run storm storm --bidders 20 --items 5 --rate 200 --duration 3
run storm-flood storm --bidders 10 --items 3 --rate 100 --duration 3 --flooders 2 --flood-rate 50
run hot-item hot-item --bidders 50 --rounds 2
run watchers watchers --watchers 100 --items 5 --bidders 5 --rate 50 --duration 3
run idle idle --connections 200 --duration 2
run browse browse --rate 50 --duration 2 --items 3 --max-errors 0
run close close --items 6 --bidders 10 --rate 100 --duration 2 --after-close 0.5 --watchers 2 --wait 10
run close-soft close --items 4 --bidders 10 --rate 60 --duration 2 --after-close 1 --soft-close 1 --wait 10
run race race --buyers 60 --units 5 --items 2 --wait 10
echo "loadtest smoke: all post-run checks passed"
