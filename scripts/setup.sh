#!/usr/bin/env bash
# Installs everything wBPF needs on a Debian machine, as root, and builds the release binaries.
# Idempotent: installed packages and a built target directory are reused.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wbpf-target}"

need_apt=()
# util-linux: setpriv, which the capability tests run the probe under.
for pkg in clang llvm bpftool libbpf-dev libclang-dev docker-compose python3-pip openssl \
    util-linux; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python_modules="opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http"
if ! python3 -c "import $python_modules, pytest, yaml" 2>/dev/null; then
    echo "setup: installing Python test dependencies"
    # Debian marks its Python as externally managed (PEP 668); these are test-only packages.
    python3 -m pip install -q --break-system-packages -r "$ROOT/tests/python/requirements.txt"
fi

# eBPF needs tracefs for uprobes and bpffs for pinning; both may be unmounted in containers.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || true
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true

command -v cargo >/dev/null || {
    echo "setup: cargo not found; install Rust 1.89 or newer (rustup)" >&2
    exit 1
}
echo "setup: building release binaries in $CARGO_TARGET_DIR (RocksDB takes ~25 min the first time)"
cargo build --release --workspace --all-targets --manifest-path "$ROOT/Cargo.toml"

# The real peers the Python tests check against (Jaeger, an OpenTelemetry Collector with tail
# sampling), built from the Go module proxy into their own cache; reused once built.
echo "setup: building the peers in ${WBPF_PEERS_DIR:-/var/tmp/wbpf-peers}"
bash "$ROOT/bench/peers/build.sh" >/dev/null
