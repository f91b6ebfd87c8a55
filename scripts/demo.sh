#!/usr/bin/env bash
# Starts a live demo auction on a fresh machine:
#
#   scripts/demo.sh          # bidding open for two hours
#   scripts/demo.sh --fast   # the night in half an hour: the close, then the reoffer
#
# Checks for the Rust toolchain, makes PostgreSQL and Redis ready (scripts/services.sh:
# installs them when missing, as root on Debian/Ubuntu, and starts them), builds the server
# (the first build takes several minutes), resets the demo database (auuction_demo) and
# serves it at http://127.0.0.1:8080 (BIND/BASE_URL override). The demo logins are printed
# at start; their password is "demo-password". No Node.js is needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/require.sh
# Before services.sh, so a missing toolchain is said in a second, not after an install.
require cargo cc
scripts/services.sh
exec cargo run -p auuction --bin auuction -- demo "$@"
