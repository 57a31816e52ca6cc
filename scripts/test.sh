#!/usr/bin/env bash
# Runs every anamo test: unit tests, the store behaviour suite and the process-level CLI tests.
# Installs what the tests need on first use. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
