#!/usr/bin/env bash
# Sets up the machine and runs the demo; extra arguments go to `wbpf demo` (try --help).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wbpf-target}"
bash "$ROOT/scripts/setup.sh"
exec "$CARGO_TARGET_DIR/release/wbpf" demo "$@"
