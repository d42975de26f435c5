#!/usr/bin/env bash
# Builds the peers wBPF is compared with, from the Go module proxy, into a cache outside the
# clone, and prints their paths:
#
#   jaeger        Jaeger v1.75.0 all-in-one (cmd/jaeger): OTLP in, query API, in memory (the UI
#                 page is a placeholder: its web assets are not part of the Go module)
#   wbpf-otelcol  an OpenTelemetry Collector (collector/main.go): OTLP receiver, the contrib
#                 tail-sampling processor, OTLP gRPC/HTTP and debug exporters, one release
#
# Only the pins (go.mod, go.sum) and our main are in the repository; the modules are fetched
# into the cache. Idempotent: a binary is rebuilt only when its inputs or the Go version change.
#
#   WBPF_PEERS_DIR   the cache (default /var/tmp/wbpf-peers): bin/, src/, gomod/, gocache/
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="${WBPF_PEERS_DIR:-/var/tmp/wbpf-peers}"
BIN="$PEERS_DIR/bin"
# The modules need Go 1.26 or newer; an older go (Debian 12 has 1.19) fetches this toolchain
# from the module proxy.
GO_MIN=1.26
GO_TOOLCHAIN_MODULE=golang.org/toolchain@v0.0.1-go1.27.3

log() { echo "peers: $*" >&2; }

go_at_least() { # go_at_least GO_BINARY MAJOR.MINOR
    local have
    have="$("$1" env GOVERSION 2>/dev/null || "$1" version | awk '{print $3}')"
    have="${have#go}"
    [[ "$(printf '%s\n%s\n' "$2" "$have" | sort -V | head -n1)" == "$2" ]]
}

find_go() {
    if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
        PATH="/usr/local/go/bin:$PATH"
    fi
    if ! command -v go >/dev/null; then
        [[ $(id -u) -eq 0 ]] || { log "go not found; install Go $GO_MIN or newer"; exit 1; }
        log "installing Debian's golang-go"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
    fi
    GO="$(command -v go)"
    if ! go_at_least "$GO" "$GO_MIN"; then
        local arch
        arch="$("$GO" env GOARCH)"
        log "$("$GO" version) is older than $GO_MIN; fetching $GO_TOOLCHAIN_MODULE"
        local dir
        dir="$("$GO" mod download -json "$GO_TOOLCHAIN_MODULE.linux-$arch" |
            sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
        # Module zips carry no file modes: mark the toolchain's programs executable, as the go
        # command does when it switches toolchains itself.
        chmod -R u+x "$dir/bin" "$dir/pkg/tool"
        GO="$dir/bin/go"
    fi
}

# build NAME DIR PACKAGE: builds PACKAGE from a copy of DIR's module into $BIN/NAME.
build() {
    local name="$1" dir="$2" package="$3"
    local work="$PEERS_DIR/src/$name"
    mkdir -p "$work"
    rm -f "$work"/*.go
    cp "$dir"/go.mod "$dir"/go.sum "$work"/
    cp "$dir"/*.go "$work"/ 2>/dev/null || true

    local stamp
    stamp="$({ cat "$dir"/go.mod "$dir"/go.sum "$dir"/*.go 2>/dev/null; "$GO" version; } |
        sha256sum | cut -d' ' -f1)"
    if [[ -x "$BIN/$name" && "$(cat "$BIN/$name.stamp" 2>/dev/null)" == "$stamp" ]]; then
        log "$name is up to date"
        return
    fi

    log "building $name (the first build takes several minutes)"
    local start=$SECONDS
    (cd "$work" && nice "$GO" build -trimpath -o "$BIN/$name.new" "$package")
    mv "$BIN/$name.new" "$BIN/$name"
    echo "$stamp" >"$BIN/$name.stamp"
    log "built $name in $((SECONDS - start)) s"
}

mkdir -p "$BIN"
# One build at a time per cache: a second caller waits, then finds the binaries up to date.
exec 9>"$PEERS_DIR/.lock"
flock 9

export GOMODCACHE="$PEERS_DIR/gomod" GOCACHE="$PEERS_DIR/gocache"
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
find_go
export GOPROXY="${GOPROXY:-$("$GO" env GOPROXY)}"

build jaeger "$HERE/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
build wbpf-otelcol "$HERE/collector" .

echo "$BIN/jaeger"
echo "$BIN/wbpf-otelcol"
