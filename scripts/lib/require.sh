# Sourced by demo.sh, test.sh and .ci/run: checks, before anything slow starts, that the
# tools a script calls later are here, so that a fresh machine gets one clear message per
# missing tool (what it is, the command that installs it) instead of a bare "command not
# found" from deep inside a build or a test stage. Unlike PostgreSQL and Redis
# (scripts/services.sh) they are not installed for the user: rustup installs Rust into the
# user's home, not system-wide, and Debian 12's own nodejs is too old for the browser tests,
# so there is no one package to pick.
#
#   require cargo cc node npm curl python3      (node: Node.js 20 or newer)
#
# Prints every problem, then exits 1 if there was any. Every tool is looked up through
# PATH, as scripts/test-services.sh checks with stubs.

# `sudo ` in the suggested commands, unless already root.
require_sudo() {
    if [ "$(id -u)" -ne 0 ]; then
        printf 'sudo '
    fi
}

# require_one TOOL: prints the problem and returns 1 when TOOL is missing.
require_one() {
    local sudo
    sudo=$(require_sudo)
    case $1 in
    cargo)
        command -v cargo >/dev/null 2>&1 && return 0
        if [ -x "${HOME:-}/.cargo/bin/cargo" ]; then
            echo "cargo is installed in ~/.cargo/bin but not on PATH. Run: . \"\$HOME/.cargo/env\"  (or open a new shell), then this command again."
        else
            echo "cargo (the Rust toolchain) is missing. Install it with rustup: curl https://sh.rustup.rs -sSf | sh  then open a new shell."
        fi
        ;;
    cc)
        # rustup does not bring a linker, and the ring crate (TLS) compiles C.
        command -v cc >/dev/null 2>&1 && return 0
        echo "cc (a C compiler and linker, which Rust needs to link and to build the ring crate) is missing. Install it: ${sudo}apt-get install -y build-essential"
        ;;
    node)
        # tests-e2e's playwright-core declares node >= 20 (tests-e2e/package-lock.json).
        local version major
        if ! command -v node >/dev/null 2>&1; then
            echo "node (Node.js 20 or newer, for the JavaScript and browser tests) is missing. Install it: ${sudo}apt-get install -y nodejs npm  where the distribution's nodejs is 20 or newer (Debian 12's is 18); otherwise from https://nodejs.org/en/download"
        else
            version=$(node --version 2>/dev/null || true)
            major=${version#v}
            major=${major%%.*}
            [[ $major =~ ^[0-9]+$ ]] && [ "$major" -ge 20 ] && return 0
            echo "node ${version:-(version unknown)} is too old: the browser tests need Node.js 20 or newer (Debian 12's nodejs is 18). Install a newer one, e.g. from https://nodejs.org/en/download"
        fi
        ;;
    npm)
        command -v npm >/dev/null 2>&1 && return 0
        echo "npm (installs the browser tests' one dependency, playwright-core) is missing. Install it: ${sudo}apt-get install -y npm  (or with Node.js from https://nodejs.org/en/download)"
        ;;
    curl | python3)
        command -v "$1" >/dev/null 2>&1 && return 0
        echo "$1 (used by the load tester's smoke run) is missing. Install it: ${sudo}apt-get install -y $1"
        ;;
    *)
        echo "require: no check for '$1'" # a typo in the calling script
        ;;
    esac
    return 1
}

require() {
    local tool failed=0
    for tool in "$@"; do
        require_one "$tool" >&2 || failed=1
    done
    [ "$failed" -eq 0 ] || exit 1
}
