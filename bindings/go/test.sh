#!/usr/bin/env bash
# Builds (if needed) and installs the C library into <repo>/build/prefix, then vets and tests
# the Go binding against it with the race detector. Exits non-zero on any failure.
#
#   bindings/go/test.sh            (from anywhere)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
prefix="$repo/build/prefix"

command -v go >/dev/null || { echo "test.sh: go not found" >&2; exit 1; }
command -v pkg-config >/dev/null || { echo "test.sh: pkg-config not found" >&2; exit 1; }

so="${CARGO_TARGET_DIR:-$repo/target}/release/libremotemedia_webrtc.so"
if [ -f "$so" ]; then
    "$repo/install.sh" --prefix "$prefix" --no-build
else
    "$repo/install.sh" --prefix "$prefix"
fi

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CGO_ENABLED=1
# Go's build cache does not notice a changed header outside the package (a new struct layout,
# a new RMW_ABI_VERSION): key the cgo build on the installed header's hash.
header_sum=$(sha256sum "$prefix/include/remotemedia_webrtc.h" | cut -c1-16)
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DRMW_GO_HEADER_SHA256_$header_sum"

cd "$here"
echo "==> go vet ./..."
go vet ./...
echo "==> go test -race -count=1 ./..."
go test -race -count=1 ./...
echo "==> go run ./examples/chat"
go run ./examples/chat
echo "==> Go binding: OK"
