#!/usr/bin/env bash
# Installs the real Sigstore clients the interop tests drive, then runs every test.
# Usage: tests/run-all.sh   (from anywhere; needs network access to PyPI and npm once)
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check "sigstore==4.5.1"
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error

export AIRGATE_FIXTURES="${AIRGATE_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
cargo test --workspace --locked
