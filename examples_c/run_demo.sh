#!/usr/bin/env bash
# The C demo, from a fresh checkout:
#
#   bash examples_c/run_demo.sh [--no-cmake] [--no-build]
#
# 1. checks the build tools (cargo, cc; pkg-config and cmake are installed with apt-get
#    when missing and running as root),
# 2. builds and installs the library into <repo>/build/prefix (./install.sh; with
#    --no-build it installs what target/release already holds),
# 3. compiles examples_c/chat.c (data channel), examples_c/call.c (audio) and
#    examples_c/video_call.c (video) with plain cc through pkg-config and runs them,
# 4. builds the same examples with CMake (find_package(RemoteMediaWebRTC)) and runs them
#    (skipped with --no-cmake, or when cmake is unavailable).
# Everything stays on 127.0.0.1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prefix="$repo/build/prefix"
out="$repo/build/examples_c"
use_cmake=1
install_args=()

for arg in "$@"; do
    case "$arg" in
        --no-cmake) use_cmake=0 ;;
        --no-build) install_args+=(--no-build) ;;
        -h|--help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "run_demo.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

step() { printf '\n==> %s\n' "$*"; }
die() { echo "run_demo.sh: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# ---- 1. tools ------------------------------------------------------------------------------
step "checking build tools"
missing=()
have pkg-config || missing+=(pkg-config)
[ "$use_cmake" = 0 ] || have cmake || missing+=(cmake)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && have apt-get; then
        echo "installing ${missing[*]} with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        for m in "${missing[@]}"; do
            if [ "$m" = cmake ]; then
                echo "note: cmake is missing (install it, e.g. sudo apt-get install cmake); the CMake build is skipped"
                use_cmake=0
            else
                die "$m is missing: install it (e.g. sudo apt-get install $m) and run again"
            fi
        done
    fi
fi
have cc || die "no C compiler 'cc' (e.g. sudo apt-get install build-essential)"
[ ${#install_args[@]} -gt 0 ] || have cargo || die "cargo is missing: install Rust from https://rustup.rs"
have pkg-config || die "pkg-config is still missing"
echo "cc: $(command -v cc), cargo: $(command -v cargo || echo none), pkg-config: $(command -v pkg-config)"

# ---- 2. install ----------------------------------------------------------------------------
step "./install.sh --prefix $prefix ${install_args[*]:-}"
"$repo/install.sh" --prefix "$prefix" ${install_args[@]+"${install_args[@]}"}

# ---- 3. plain cc through pkg-config --------------------------------------------------------
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
mkdir -p "$out"
rmw_flags=$(pkg-config --cflags --libs remotemedia_webrtc)
step "cc chat.c $rmw_flags"
cc -std=c99 -Wall -Wextra -pedantic -O2 "$here/chat.c" -o "$out/chat" \
    $rmw_flags -pthread -Wl,-rpath,"$prefix/lib"
step "cc call.c $rmw_flags -lm"
cc -std=c99 -Wall -Wextra -pedantic -O2 "$here/call.c" -o "$out/call" \
    $rmw_flags -lm -pthread -Wl,-rpath,"$prefix/lib"
step "cc video_call.c $rmw_flags -lm"
cc -std=c99 -Wall -Wextra -pedantic -O2 "$here/video_call.c" -o "$out/video_call" \
    $rmw_flags -lm -pthread -Wl,-rpath,"$prefix/lib"
step "running $out/chat (two peers chat over a data channel)"
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$out/chat"
step "running $out/call (alice and bob call each other: Opus audio both ways)"
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$out/call"
step "running $out/video_call (alice and bob send each other a moving picture: VP8 video both ways)"
LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$out/video_call"

# ---- 4. CMake ------------------------------------------------------------------------------
if [ "$use_cmake" = 1 ]; then
    step "cmake build of examples_c (find_package(RemoteMediaWebRTC))"
    cmake -S "$here" -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$out/cmake" >/dev/null
    step "running $out/cmake/chat"
    "$out/cmake/chat"
    step "running $out/cmake/call"
    "$out/cmake/call"
    step "running $out/cmake/video_call"
    "$out/cmake/video_call"
fi

step "demo OK"
