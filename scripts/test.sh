#!/usr/bin/env bash
# Runs every anamo test: unit tests, the store behaviour suite (SQLite, and DynamoDB on two
# independent emulators: moto and dynalite), and the process-level CLI tests. On first use it
# installs moto from PyPI into .venv/ and dynalite from the npm registry into .dynalite/ (both
# ignored by git), and Debian's Chromium for the report's browser test. Extra arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import moto.server, werkzeug" 2>/dev/null; then
  echo "installing the AWS emulator (moto[server]) into .venv/ ..." >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6'
fi
export ANAMO_PYTHON="$PWD/.venv/bin/python"
# The second DynamoDB: dynalite, on Node (in memory; its LevelDB backend is not used).
if [ ! -x .dynalite/node_modules/.bin/dynalite ]; then
  echo "installing the second DynamoDB emulator (dynalite) into .dynalite/ ..." >&2
  npm install --prefix .dynalite --no-audit --no-fund --loglevel=error 'dynalite@4.0.0' >/dev/null
fi
export ANAMO_DYNALITE="$PWD/.dynalite/node_modules/.bin/dynalite"
# The HTML report is tested in a real browser: Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Chromium (Debian package chromium) for the report's browser test ..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium >/dev/null
fi
cargo test --locked "$@"
