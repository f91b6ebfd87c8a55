# Sourced by the load-test scripts (loadtest-smoke.sh, bench-storm.sh): starts the built
# `auuction` in $BIN on a free port with a fresh database named $DB_NAME on $PG_URL, an
# admin account, and rate limits lifted (every bidder comes from this box's few addresses);
# exports AUUCTION_URL / AUUCTION_ADMIN_EMAIL / AUUCTION_ADMIN_PASSWORD for the load tester;
# stops the server and drops the database on exit. Sets SERVER_PID and WORK (a temp dir).
#
# Needs: BIN, PG_URL, DB_NAME; python3 (a free port), curl, psql.

# The database is on this box: TLS over loopback would only cost CPU (as the server's default).
export DATABASE_URL="$PG_URL/$DB_NAME?sslmode=disable"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export BIND="127.0.0.1:$PORT"
export BASE_URL="http://127.0.0.1:$PORT"
export MAIL_DIR="$WORK/mail" MEDIA_DIR="$WORK/media"
export SECRET_KEY="scratch-server-secret-key-0123456789abcdef"
export RATE_LIMIT_AUTH_PER_IP=100000 RATE_LIMIT_AUTH_PER_ACCOUNT=100000
export RATE_LIMIT_WRITE_PER_IP=1000000000 RATE_LIMIT_WRITE_PER_ACCOUNT=1000000000
# Every socket of the generator comes from this box's few addresses.
export WS_MAX_SOCKETS_PER_ADDRESS=1000000
export RUST_LOG="${RUST_LOG:-warn}"

SERVER_PID=""
scratch_server_cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap scratch_server_cleanup EXIT

ADMIN_EMAIL="loadtest-admin@example.org"
ADMIN_PASSWORD="scratch-admin-password-42"
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
