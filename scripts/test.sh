#!/usr/bin/env bash
# Sets up the machine and runs every test: formatting, lints, Rust tests (unit, RocksDB,
# eBPF in the running kernel), the Python OpenTelemetry SDK tests against the gateway, and a
# short run of every fuzz target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wbpf-target}"
export WBPF_BIN_DIR="$CARGO_TARGET_DIR/release"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --release --workspace
echo "== pytest"
python3 -m pytest -q tests/python
echo "== fuzz"
bash "$ROOT/scripts/fuzz.sh"
