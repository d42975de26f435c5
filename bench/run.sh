#!/usr/bin/env bash
# The benchmark in one command: builds wBPF and the peers (cached), then runs bench/run.py.
# Arguments are passed to bench/run.py (for example --rates 500,1000 --seconds 10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wbpf-target}"
cd "$ROOT"
cargo build --release --workspace
bash bench/peers/build.sh >/dev/null
python3 -c "import matplotlib" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages matplotlib==3.10.7
exec python3 bench/run.py "$@"
