#!/usr/bin/env bash
# Installs the real Sigstore clients the interop tests drive (and headless Chromium),
# then runs every test.
# Usage: tests/run-all.sh   (from anywhere; needs network access to PyPI and npm once)
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check "sigstore==4.5.1"
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error

# Headless Chromium for the dashboard test of `airgate serve` (Debian's package).
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi

export AIRGATE_FIXTURES="${AIRGATE_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
cargo test --workspace --locked
