#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need (idempotently), then
# runs formatting, lint and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: OpenSSL (CLI and headers), curl, pkg-config, Python venv support.
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Python checkers (pkilint, cryptography) in a project-local venv.
VENV="${VOUCH_TEST_VENV:-$PWD/.venv}"
if ! "$VENV/bin/python" -c 'import pkilint, cryptography' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
fi
export VOUCH_TEST_VENV="$VENV"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# One closing line over every test binary (cargo prints one summary per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
