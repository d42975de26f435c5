#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time, starting from the committed corpus, and
# fails on the first crash (its input is left in fuzz/artifacts/<target>/).
#
#   bash scripts/fuzz.sh                    # each target for FUZZ_SECONDS (default 30)
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh otlp_json
#
# Installs the nightly toolchain and cargo-fuzz if they are missing. The fuzz crate has its own
# target directory: it is built with nightly and must not share artifacts with the release build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_FUZZ_VERSION=0.13.2
TOOLCHAIN="${WBPF_FUZZ_TOOLCHAIN:-nightly}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
export CARGO_TARGET_DIR="${WBPF_FUZZ_TARGET_DIR:-/var/tmp/wbpf-fuzz-target}"
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(otlp_protobuf otlp_json config_yaml)

cargo "+$TOOLCHAIN" --version >/dev/null 2>&1 || {
    echo "fuzz: installing the $TOOLCHAIN toolchain"
    rustup toolchain install "$TOOLCHAIN" --profile minimal
}
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    env -u CARGO_TARGET_DIR cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

cd "$ROOT/fuzz"
cargo fmt --check
cargo "+$TOOLCHAIN" fetch --locked || {
    echo "fuzz: fuzz/Cargo.lock is out of date: run cargo fetch in fuzz/ and commit it" >&2
    exit 1
}
echo "fuzz: building the targets in $CARGO_TARGET_DIR"
cargo "+$TOOLCHAIN" fuzz build

for target in "${TARGETS[@]}"; do
    # New inputs go to a corpus outside the clone, which later runs continue from; the
    # committed corpus is only read.
    work="$CARGO_TARGET_DIR/corpus/$target"
    mkdir -p "$work"
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    cargo "+$TOOLCHAIN" fuzz run "$target" "$work" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 2>&1 \
        | grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)'
done
