#!/usr/bin/env bash
# The other auction-night benchmarks, each on a freshly started release server with a fresh
# database (memory per connection is only meaningful on a fresh process):
#
#   hot-item  BIDDERS (default 500) bid on one item at the same instant, ROUNDS (3) times
#   idle      CONNECTIONS (default 5000) sockets held for HOLD seconds (10): memory per socket
#
#   scripts/bench-scenarios.sh
#   BIN=/some/dir SKIP_BUILD=1 scripts/bench-scenarios.sh    # other binaries (an older server)
#
# Prints one line per scenario with the server's CPU seconds during it. Reports land in
# $OUT (default target/bench-scenarios/). Judge figures against runs made in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."

BIDDERS="${BIDDERS:-500}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-5000}"
HOLD="${HOLD:-10}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
OUT="${OUT:-target/bench-scenarios}"
mkdir -p "$OUT"

scripts/services.sh >/dev/null
BIN="${BIN:-target/release}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p auuction -p auuction-loadtest
TICKS="$(getconf CLK_TCK)"
ticks_of_pid() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One scenario on its own scratch server (a subshell: the server stops when it ends).
bench() {
    local name=$1
    shift
    (
        DB_NAME="auuction_bench_${name//-/_}_$$"
        # shellcheck source=lib/scratch-server.sh
        . scripts/lib/scratch-server.sh
        before=$(ticks_of_pid "$SERVER_PID")
        status=0
        "$BIN/auuction-loadtest" --quiet --json "$OUT/$name.json" "$@" >"$OUT/$name.txt" || status=$?
        after=$(ticks_of_pid "$SERVER_PID")
        python3 - "$OUT/$name.json" "$name" "$status" "$(( after - before ))" "$TICKS" <<'PY'
import json, sys
path, name, status, server, hz = sys.argv[1:]
r = json.load(open(path))
s = r["series"][0] if r["series"] else None
lat = f'p50 {s["latency"]["p50_ms"]:.1f} ms  p99 {s["latency"]["p99_ms"]:.1f} ms  max {s["latency"]["max_ms"]:.1f} ms  ok {s["ok"]}' if s else ""
figs = r["figures"]
extra = "  ".join(f"{k}: {figs[k]}" for k in ("server memory per connection (at open)", "connections held to the end") if k in figs)
check = "pass" if r.get("passed") else "FAIL"
print(f"{name:9} {lat}  {extra}  check {check} (exit {status})  server cpu-s {int(server) / float(hz):.1f}")
PY
    )
}

echo "scenario  figures (binaries in $BIN)"
bench hot-item hot-item --bidders "$BIDDERS" --rounds "$ROUNDS"
bench idle idle --connections "$CONNECTIONS" --duration "$HOLD" --sources 4
