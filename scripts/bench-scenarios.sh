#!/usr/bin/env bash
# The other auction-night benchmarks, each on a freshly started release server with a fresh
# database (memory per connection is only meaningful on a fresh process):
#
#   hot-item  BIDDERS (default 500) bid on one item at the same instant, ROUNDS (3) times
#   idle      CONNECTIONS (default 5000) sockets held for HOLD seconds (10): memory per socket
#   close     CLOSE_ITEMS (default 1000) items closing at the same instant after CLOSE_RATE
#             bids/s (1000) for CLOSE_SECONDS (10) into it: close to `closed` frame, the last
#             one judged against 2 s
#   race      BUYERS (default 10000, half on sockets, half on REST) buy UNITS (25) reoffer
#             units at the same instant: answer latency, p99 judged against 300 ms
#
#   scripts/bench-scenarios.sh
#   BIN=/some/dir SKIP_BUILD=1 scripts/bench-scenarios.sh    # other binaries (an older server)
#   ONLY="close race" scripts/bench-scenarios.sh             # some of them
#
# Prints one line per scenario with the server's CPU seconds during it. Reports land in
# $OUT (default target/bench-scenarios/). Judge figures against runs made in one sitting.
set -euo pipefail
cd "$(dirname "$0")/.."

BIDDERS="${BIDDERS:-500}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-5000}"
HOLD="${HOLD:-10}"
CLOSE_ITEMS="${CLOSE_ITEMS:-1000}"
CLOSE_RATE="${CLOSE_RATE:-1000}"
CLOSE_SECONDS="${CLOSE_SECONDS:-10}"
BUYERS="${BUYERS:-10000}"
UNITS="${UNITS:-25}"
ONLY="${ONLY:-hot-item idle close race}"
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
        # A scratch database: the close and the race also check the commitments in it.
        export AUUCTION_LOADTEST_CHECK_DATABASE_URL="$DATABASE_URL"
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
extra = "  ".join(f"{k}: {figs[k]}" for k in ("server memory per connection (at open)", "connections held to the end", "last closed frame after its close", "last winner decided after its close (determinedAt)", "items sold") if k in figs)
for c in r.get("checks", []):
    extra += f"  [{c['measured']}]"
if name == "race":
    for s2 in r["series"][1:]:
        extra += f'  {s2["name"]}: p50 {s2["latency"]["p50_ms"]:.1f} p99 {s2["latency"]["p99_ms"]:.1f} ms'
check = "pass" if r.get("passed") else "FAIL"
print(f"{name:9} {lat}  {extra}  check {check} (exit {status})  server cpu-s {int(server) / float(hz):.1f}")
PY
    )
}

echo "scenario  figures (binaries in $BIN)"
for scenario in $ONLY; do
    case $scenario in
    hot-item) bench hot-item hot-item --bidders "$BIDDERS" --rounds "$ROUNDS" ;;
    idle) bench idle idle --connections "$CONNECTIONS" --duration "$HOLD" --sources 4 ;;
    close) bench close close --items "$CLOSE_ITEMS" --rate "$CLOSE_RATE" --duration "$CLOSE_SECONDS" --max-ms 2000 ;;
    race) bench race race --buyers "$BUYERS" --units "$UNITS" --p99-max-ms 300 ;;
    *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
done
