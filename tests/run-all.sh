#!/usr/bin/env bash
# The test command: installs the real clients the interop tests drive, then runs
# every test, the interop ones included.
#
#   tests/run-all.sh            (from any directory)
#
# What it assumes, and does:
# - Rust (cargo) and a C compiler, as for building airgate.
# - Python >= 3.10 with the venv module. The clients go into a venv inside the
#   repository (tests/.venv, ignored by git), pinned with hashes by
#   tests/interop/requirements.txt; nothing is installed into the system Python
#   (a stock Debian 12 Python is "externally managed", PEP 668). On Debian-family
#   systems a missing python3-venv is installed with apt. AIRGATE_PYTHON=PATH
#   uses another interpreter that already has the requirements.
# - Node.js >= 20.17 with npm: sigstore-js from tests/interop/package-lock.json
#   (npm ci).
# - Headless Chromium at /usr/bin/chromium (the dashboard test): installed with
#   apt (Debian's package) when missing, so other systems need it already there.
# - nginx (Debian's package, for the published-tree tests): installed with apt
#   when missing.
# - skopeo (Debian's package, for the container image tests): installed with
#   apt when missing.
# - docker-registry (Debian's package: CNCF distribution, for the registry pull
#   and push tests): installed with apt when missing; its service is not used,
#   the tests start their own on 127.0.0.1.
# - htpasswd (Debian's apache2-utils, for the registry behind basic auth):
#   installed with apt when missing.
# - Network access to PyPI, npm and the Debian mirror the first time only.
#
# A plain `cargo test --workspace` runs the hermetic, Rust-only tests and lists
# the interop tests as "ignored"; this script runs them with --include-ignored,
# and there a missing client fails the test instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { printf 'run-all: %s\n' "$*" >&2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing $*, and this is not a Debian-family system: install it and rerun"
    exit 2
  fi
  say "installing $* (Debian packages)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# --- Python clients: sigstore-python, python-tuf, conda-sigstore, py-rattler
requirements=tests/interop/requirements.txt
venv=tests/.venv
if [ -z "${AIRGATE_PYTHON:-}" ]; then
  base=$(command -v python3 || true)
  if [ -z "$base" ]; then apt_install python3 python3-venv; base=$(command -v python3); fi
  "$base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
    say "$base is $("$base" --version 2>&1); Python >= 3.10 is needed"
    exit 2
  }
  stamp="$venv/.requirements.sha256"
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$venv"
    if ! "$base" -m venv "$venv" 2>/dev/null; then
      rm -rf "$venv"
      apt_install python3-venv
      "$base" -m venv "$venv"
    fi
    say "installing the pinned Python clients into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      --require-hashes --only-binary=:all: -r "$requirements"
    echo "$want" > "$stamp"
  fi
  export AIRGATE_PYTHON="$repo/$venv/bin/python"
fi
"$AIRGATE_PYTHON" -c 'import sigstore, tuf, conda_sigstore, rattler' || {
  say "$AIRGATE_PYTHON lacks the pinned clients ($requirements)"
  exit 2
}

# --- sigstore-js
command -v node >/dev/null 2>&1 || apt_install nodejs npm
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=17)?0:1)' || {
  say "Node.js $(node --version) is too old: sigstore-js needs >= 20.17"
  exit 2
}
npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error

# --- headless Chromium for the dashboard test
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
# Debian's nginx serves a published tree (airgate publish) in the interop tests.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then apt_install nginx; fi
# skopeo pulls images from `airgate serve` in the container image tests.
if ! command -v skopeo >/dev/null 2>&1; then apt_install skopeo; fi
# docker-registry is the upstream and enclave registry of the pull/push tests.
if ! command -v docker-registry >/dev/null 2>&1; then apt_install docker-registry; fi
# htpasswd (apache2-utils) makes the bcrypt login of the basic-auth registry test.
if ! command -v htpasswd >/dev/null 2>&1; then apt_install apache2-utils; fi

cargo test --workspace --locked -- --include-ignored
