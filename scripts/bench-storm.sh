#!/usr/bin/env bash
# The bid-throughput benchmark: a release server on a fresh database, then one `storm` run
# per rate, each followed by the CPU seconds the server, the load generator and Postgres
# used during it. The CPU split says who is the bottleneck on a shared box.
#
#   scripts/bench-storm.sh                       # rates 2000 10000 30000 50000
#   RATES="20000 40000" DURATION=20 scripts/bench-storm.sh
#   BIDDERS=500 ITEMS=1000 GEN_THREADS=1 scripts/bench-storm.sh
#   EXTRA_ARGS="--flooders 4" scripts/bench-storm.sh     # with guest sockets flooding subscribes
#   BIN=/some/dir SKIP_BUILD=1 scripts/bench-storm.sh      # other binaries (e.g. an older server)
#
# Every run's post-run check must pass (no lost, duplicated or mis-priced bid); the script
# stops at the first that fails. Reports land in $OUT (default target/bench-storm/), with the
# server's /metrics after each run (metrics-after-storm-RATE.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

RATES="${RATES:-2000 10000 30000 50000}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
BIDDERS="${BIDDERS:-500}"
ITEMS="${ITEMS:-1000}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432}"
OUT="${OUT:-target/bench-storm}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# The generator's runtime threads. On a box it shares with the server and Postgres, one
# thread gave lower latencies than two (fewer threads competing for two cores).
GEN_THREADS="${GEN_THREADS:-1}"

scripts/services.sh
BIN="${BIN:-target/release}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p auuction -p auuction-loadtest
mkdir -p "$OUT"

DB_NAME="auuction_bench_storm_$$"
# shellcheck source=lib/scratch-server.sh
. scripts/lib/scratch-server.sh

TICKS="$(getconf CLK_TCK)"
# CPU ticks (user + system) of one process, or of every process with a given command name.
ticks_of_pid() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks_of_postgres() {
    local total=0 pid
    for pid in $(pgrep -x postgres); do
        total=$((total + $(ticks_of_pid "$pid")))
    done
    echo "$total"
}
# Postgres backends come and go; sampling them often keeps short-lived ones counted.
watch_postgres() {
    declare -A seen
    while :; do
        for pid in $(pgrep -x postgres); do
            seen[$pid]=$(ticks_of_pid "$pid")
        done
        local sum=0
        for pid in "${!seen[@]}"; do sum=$((sum + seen[$pid])); done
        echo "$sum" >"$WORK/pg_ticks"
        sleep 0.5
    done
}

# Journal commits so far: the first one after a run's setup is its first bid.
commits() {
    curl -fsS "$BASE_URL/metrics" 2>/dev/null | awk '/^auuction_journal_commit_seconds_count /{print $2}'
}

echo "rate  accepted/s  refused/s  p50ms  p99ms  check | server p99ms | cpu-s server  generator  postgres  (run ${DURATION}s, ${BIDDERS} bidders, ${ITEMS} items)"
declare -A RUNS_AT=()
for RATE in $RATES; do
    # A rate given twice keeps both reports: storm-2000, storm-2000-2, ...
    RUNS_AT[$RATE]=$(( ${RUNS_AT[$RATE]:-0} + 1 ))
    NAME="storm-$RATE"
    [ "${RUNS_AT[$RATE]}" -gt 1 ] && NAME="storm-$RATE-${RUNS_AT[$RATE]}"
    server_before=$(ticks_of_pid "$SERVER_PID")
    rm -f "$WORK/metrics-before"
    commits_before=$(commits)
    pg_before=$(ticks_of_postgres)
    watch_postgres &
    WATCH_PID=$!
    start_ns=$(date +%s%N)
    # shellcheck disable=SC2086
    TOKIO_WORKER_THREADS="$GEN_THREADS" "$BIN/auuction-loadtest" --quiet --json "$OUT/$NAME.json" --html "$OUT/$NAME.html" \
        storm --bidders "$BIDDERS" --items "$ITEMS" --rate "$RATE" --duration "$DURATION" \
        --warmup "$WARMUP" $EXTRA_ARGS >"$OUT/$NAME.txt" &
    LT_PID=$!
    lt_ticks=0
    storm_began=""
    while kill -0 "$LT_PID" 2>/dev/null; do
        t=$(ticks_of_pid "$LT_PID")
        [ "$t" -gt "$lt_ticks" ] && lt_ticks=$t
        # The server's own latency is counted from the end of the warm-up, as the
        # generator's is: the first commit after the setup marks the storm's start.
        if [ -z "$storm_began" ] && [ "$(commits)" != "$commits_before" ]; then
            storm_began=$(date +%s%N)
        fi
        if [ -n "$storm_began" ] && [ ! -s "$WORK/metrics-before" ] \
            && [ $(( $(date +%s%N) - storm_began )) -ge $(( WARMUP * 1000000000 )) ]; then
            curl -fsS "$BASE_URL/metrics" >"$WORK/metrics-before" 2>/dev/null || true
        fi
        sleep 0.25
    done
    status=0
    wait "$LT_PID" || status=$?
    kill "$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
    server_after=$(ticks_of_pid "$SERVER_PID")
    # The server's counters after the run (the journal's commit times and batch sizes among
    # them), cumulative since the server started.
    curl -fsS "$BASE_URL/metrics" >"$OUT/metrics-after-$NAME.txt" 2>/dev/null || true
    pg_after=$(cat "$WORK/pg_ticks" 2>/dev/null || echo "$pg_before")
    python3 - "$OUT/$NAME.json" "$RATE" "$status" \
        "$(( server_after - server_before ))" "$lt_ticks" "$(( pg_after - pg_before ))" "$TICKS" \
        "$WORK/metrics-before" "$OUT/metrics-after-$NAME.txt" <<'EOF'
import json, re, sys
path, rate, status, server, gen, pg, hz, before, after = sys.argv[1:]
hz = float(hz)

def answer_buckets(file):
    """The server's bid_answer_seconds histogram: {upper bound: cumulative count}."""
    out = {}
    try:
        for line in open(file):
            m = re.match(r'auuction_bid_answer_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                out[m.group(1)] = float(m.group(2))
    except OSError:
        pass
    return out

def server_p99():
    """The server's own p99 after the warm-up (the histogram's difference), as the bucket
    bound it falls under: '<= 5' means 99% of the answers were queued within 5 ms of the
    frame. '-' when the counters before could not be read."""
    a, b = answer_buckets(after), answer_buckets(before)
    if not b:
        return "-"
    counts = sorted(((float("inf") if le == "+Inf" else float(le), n - b.get(le, 0.0))
                     for le, n in a.items()))
    if not counts or counts[-1][1] <= 0:
        return "-"
    total = counts[-1][1]
    for le, n in counts:
        if n >= 0.99 * total:
            return "<= %g" % (le * 1000) if le != float("inf") else "> %g" % (counts[-2][0] * 1000)
    return "-"

try:
    r = json.load(open(path))
    s = r["series"][0]
    secs = r["seconds"] or 1
    ok = s["ok_per_second"]
    refused = sum(s["refused"].values()) / secs
    p50 = s["latency"]["p50_ms"]
    p99 = s["latency"]["p99_ms"]
    check = "pass" if status == "0" else f"exit {status}"
    print(f"{rate:>5}  {ok:>10.0f}  {refused:>9.0f}  {p50:>5.1f}  {p99:>5.1f}  {check:>5} | "
          f"{server_p99():>12} | "
          f"{int(server)/hz:>12.1f}  {int(gen)/hz:>9.1f}  {int(pg)/hz:>8.1f}")
except Exception as e:
    print(f"{rate:>5}  (no report: {e}; exit {status})")
EOF
    if [ "$status" = "1" ] || [ "$status" = "3" ]; then
        echo "storm at $RATE failed (exit $status); see $OUT/$NAME.txt" >&2
        exit "$status"
    fi
done
