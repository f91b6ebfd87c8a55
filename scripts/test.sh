#!/usr/bin/env bash
# The one test command, for newcomers and CI alike:
#
#   scripts/test.sh
#
# 0. checks that the tools it needs are here (Rust and cc; Node.js 20+ and npm when there
#    are JavaScript or browser tests; curl and python3), one message per missing one;
# 1. the test of scripts/services.sh's install logic, with stubs (scripts/test-services.sh);
# 2. makes local PostgreSQL and Redis ready (scripts/services.sh: installs them when
#    missing, as root on Debian/Ubuntu, and starts them);
# 3. Rust: every crate, every target (unit, integration, doc, examples, benches build);
# 4. the load tester's scenarios at tiny sizes, with their post-run checks;
# 5. JavaScript unit tests in client-js/test/ (node --test), when there are any;
# 6. browser tests in tests-e2e/ (node --test + system Chromium, installed as root when
#    missing), when that package exists.
#
# DATABASE_URL (default postgres://postgres@127.0.0.1:5432/auuction_test_base) is the
# database the Rust tests derive their own throwaway databases from.
# Arguments are passed to `cargo test`, e.g. `scripts/test.sh -- --nocapture`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
START=$SECONDS
STAGE="setup"
declare -a DONE=()

summary() {
    local rc=$?
    local took=$((SECONDS - START))
    if [ "$rc" -eq 0 ]; then
        printf '\ntest.sh: PASSED (%s) in %ss\n' "${DONE[*]}" "$took"
    else
        printf '\ntest.sh: FAILED during %s (passed so far: %s) after %ss\n' \
            "$STAGE" "${DONE[*]:-none}" "$took" >&2
    fi
}
trap summary EXIT

STAGE_START=$SECONDS
step() {
    # How long each stage took, so a slow CI run says where its time went.
    if [ "$STAGE" != "setup" ]; then
        printf '(%s took %ss)\n' "$STAGE" "$((SECONDS - STAGE_START))"
    fi
    STAGE=$1
    STAGE_START=$SECONDS
    printf '\n==> %s\n' "$1"
}

# ---- tools ---------------------------------------------------------------------------
# Checked before anything slow, so a fresh machine hears about every missing tool at once.
step "tools"
. scripts/lib/require.sh
have_js_tests() {
    [ -d client-js/test ] &&
        [ -n "$(find client-js/test -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.cjs' \) -not -path '*/node_modules/*' -print -quit)" ]
}
tools=(cargo cc curl python3)
if have_js_tests || [ -f tests-e2e/package.json ]; then
    tools+=(node)
fi
if [ -f tests-e2e/package.json ]; then
    tools+=(npm)
fi
require "${tools[@]}"
echo "found: ${tools[*]}"
DONE+=("tools")

# ---- services.sh's own test -------------------------------------------------------------
# Seconds, no network, no root changes: every branch of the installer against stubs.
step "services.sh branches"
scripts/test-services.sh
DONE+=("services-test")

# ---- services -------------------------------------------------------------------------
step "services"
scripts/services.sh

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/auuction_test_base}"

# Make sure the base database exists (harmless when it does): tests connect to it first.
if command -v psql >/dev/null 2>&1; then
    base_db=${DATABASE_URL%%\?*}
    base_db=${base_db##*/}
    admin_url="${DATABASE_URL%/*}/postgres"
    if [[ $base_db =~ ^[A-Za-z0-9_]+$ ]] &&
        ! psql "$admin_url" -tAc "SELECT 1 FROM pg_database WHERE datname = '$base_db'" 2>/dev/null | grep -q 1; then
        echo "creating database $base_db"
        psql "$admin_url" -qc "CREATE DATABASE \"$base_db\"" ||
            echo "warning: could not create $base_db; the tests may fail to connect" >&2
    fi
fi
DONE+=("services")

# ---- Rust ---------------------------------------------------------------------------
step "cargo test"
# Everything is built once, with the features `cargo test` unifies (dev-dependencies
# included), so the binaries the smoke run and the browser tests start come out of the same
# build instead of a second one with other features (that cost minutes on a cold machine).
cargo build --workspace --all-targets
cargo test --workspace --all-targets "$@"
DONE+=("rust")

# ---- load tester smoke run ----------------------------------------------------------
# Every scenario for a few seconds at tiny sizes against a real server; fails only when a
# post-run check fails (a lost, duplicated or mis-priced bid), never on speed.
step "load tester smoke run"
SKIP_BUILD=1 scripts/loadtest-smoke.sh
DONE+=("loadtest")

# ---- JavaScript unit tests ----------------------------------------------------------------
step "client-js unit tests"
# In a directory named test, node --test runs every .js/.mjs/.cjs file.
if have_js_tests; then
    node --test client-js/test/
    DONE+=("js-unit")
else
    echo "no tests in client-js/test/, skipped"
fi

# ---- browser tests ------------------------------------------------------------------
step "browser tests"
if [ -f tests-e2e/package.json ]; then
    CHROMIUM=/usr/bin/chromium
    if [ ! -x "$CHROMIUM" ]; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing Chromium for the browser tests"
            apt-get update
            # Recommends would add systemd, samba, CUPS...: minutes, and nothing a headless
            # test needs.
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
        else
            echo "The browser tests need Chromium at $CHROMIUM. Install it (Debian/Ubuntu:" >&2
            echo "  sudo apt-get install -y chromium) and run scripts/test.sh again." >&2
            exit 1
        fi
    fi
    # The system Chromium is used: never download a browser into node_modules.
    export PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ -f tests-e2e/package-lock.json ]; then
        npm ci --prefix tests-e2e --no-audit --no-fund
    else
        npm install --prefix tests-e2e --no-audit --no-fund
    fi
    # What the browser tests start and drive: the server `cargo build --workspace
    # --all-targets` built above.
    export AUUCTION_BIN="$ROOT/${CARGO_TARGET_DIR:-target}/debug/auuction"
    [[ ${CARGO_TARGET_DIR:-} = /* ]] && AUUCTION_BIN="$CARGO_TARGET_DIR/debug/auuction"
    export CHROME_PATH=$CHROMIUM PUPPETEER_EXECUTABLE_PATH=$CHROMIUM
    node --test tests-e2e/
    DONE+=("e2e")
else
    echo "no tests-e2e/package.json, skipped"
fi
step "done"
