#!/usr/bin/env bash
# Builds the C# binding (bindings/csharp/build/RemoteMedia.WebRtc.dll), its tests and the chat
# example with mono's mcs, then runs the tests and the example against the library installed
# in ../../build/prefix. Exits non-zero on any failure. Network: 127.0.0.1 only.
#
# Usage: bindings/csharp/test.sh            (from anywhere)
# Needs: mcs + mono (Debian: apt-get install mono-mcs mono-runtime; installed here when
#        missing and running as root), and cargo unless target/release already holds the library.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
prefix="$repo/build/prefix"
out="$here/build"

if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing mono (mono-mcs mono-runtime)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime >/dev/null
    else
        echo "test.sh: mcs/mono not found: apt-get install mono-mcs mono-runtime" >&2
        exit 1
    fi
fi

# The library, installed into the prefix (built by cargo only if target/release lacks it).
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
if [ -f "$target_dir/release/libremotemedia_webrtc.so" ] && [ -f "$target_dir/release/libremotemedia_webrtc.a" ]; then
    "$repo/install.sh" --prefix "$prefix" --no-build >/dev/null
else
    "$repo/install.sh" --prefix "$prefix" >/dev/null
fi
[ -e "$prefix/lib/libremotemedia_webrtc.so" ] || { echo "test.sh: $prefix/lib/libremotemedia_webrtc.so missing" >&2; exit 1; }

echo "==> mcs: binding, tests, example"
mkdir -p "$out"
mcs -nologo -warnaserror+ -target:library -out:"$out/RemoteMedia.WebRtc.dll" "$here"/src/*.cs
mcs -nologo -out:"$out/Tests.exe" -r:"$out/RemoteMedia.WebRtc.dll" "$here/tests/Tests.cs"
mcs -nologo -out:"$out/Chat.exe" -r:"$out/RemoteMedia.WebRtc.dll" "$here/example/Chat.cs"

export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$out"
status=0
echo "==> mono Chat.exe"
timeout 60 mono --debug Chat.exe || status=1
echo "==> mono Tests.exe"
timeout 300 mono --debug Tests.exe || status=1
exit $status
