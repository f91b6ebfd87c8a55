#!/usr/bin/env bash
# Smoke test of the load tester: builds the server and auuction-loadtest, starts the server on
# a free port with a fresh database, runs every scenario for a few seconds at tiny sizes and
# fails if any post-run check fails (lost, duplicated or mis-priced bids). Speeds are not
# judged here: CI boxes are noisy.
#
#   scripts/loadtest-smoke.sh            # dev build (quick to compile)
#   PROFILE=release scripts/loadtest-smoke.sh
#
# Needs Postgres at PG_URL (default postgres://postgres@127.0.0.1:5432) and python3 (for a
# free port).
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${PROFILE:-dev}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
DB_NAME="auuction_loadtest_smoke_$$_${RANDOM}"
export DATABASE_URL="$PG_URL/$DB_NAME"

if [ "$PROFILE" = "release" ]; then
    cargo build --release -p auuction -p auuction-loadtest
    BIN=target/release
else
    cargo build -p auuction -p auuction-loadtest
    BIN=target/debug
fi

WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BIND="127.0.0.1:$PORT"
export BASE_URL="http://127.0.0.1:$PORT"
export MAIL_DIR="$WORK/mail" MEDIA_DIR="$WORK/media"
export SECRET_KEY="loadtest-smoke-secret-key-0123456789abcdef"
# Every bidder and request comes from this box's few addresses: lift the per-address and
# per-account limits, or the smoke test would measure the rate limiter.
export RATE_LIMIT_AUTH_PER_IP=100000 RATE_LIMIT_AUTH_PER_ACCOUNT=100000
export RATE_LIMIT_WRITE_PER_IP=10000000 RATE_LIMIT_WRITE_PER_ACCOUNT=10000000
export RUST_LOG="${RUST_LOG:-warn}"

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_EMAIL="loadtest-admin@example.org"
ADMIN_PASSWORD="smoke-admin-password-42"
printf '%s\n' "$ADMIN_PASSWORD" | "$BIN/auuction" user add --email "$ADMIN_EMAIL" \
    --name "Load Test Admin" --role admin --password-stdin >/dev/null

"$BIN/auuction" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS "$BASE_URL/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log"; exit 1; fi
    sleep 0.1
done

export AUUCTION_URL="$BASE_URL" AUUCTION_ADMIN_EMAIL="$ADMIN_EMAIL" AUUCTION_ADMIN_PASSWORD="$ADMIN_PASSWORD"
# Items come from the catalog API; a server without one (a development tree before the
# catalog landed) gets them inserted into its own scratch database instead.
if [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE_URL/api/items")" = "404" ]; then
    echo "note: no catalog API on this server; inserting the smoke test's items directly" >&2
    export AUUCTION_LOADTEST_DEV_DATABASE_URL="$DATABASE_URL"
fi

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
run hot-item hot-item --bidders 50 --rounds 2
run watchers watchers --watchers 100 --items 5 --bidders 5 --rate 50 --duration 3
run idle idle --connections 200 --duration 2
run browse browse --rate 50 --duration 2 --items 3 --max-errors 0
echo "loadtest smoke: all post-run checks passed"
