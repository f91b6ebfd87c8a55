#!/usr/bin/env bash
# Starts a live demo auction on a fresh machine:
#
#   scripts/demo.sh
#
# Starts PostgreSQL and Redis if they are down, builds the server, resets the demo database
# (auuction_demo) and serves it at http://127.0.0.1:8080 (BIND/BASE_URL override). The demo
# logins are printed at start; their password is "demo-password".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/services.sh
exec cargo run -p auuction --bin auuction -- demo "$@"
