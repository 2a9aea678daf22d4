#!/usr/bin/env bash
# Builds the cargo-fuzz targets and runs each for a while (CI, or by hand):
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 30 s, every target)
#
# Each target runs alone (one core), from a temporary copy of its seed corpus
# (fuzz/corpus/<target>/), so the inputs it finds never dirty the repository, with its
# dictionary (fuzz/dict/<target>.dict) if it has one. Prints, per
# target, libFuzzer's executions, exec/s and coverage; exits 1 if any target crashed
# (panic, failed invariant, sanitizer report, timeout, out of memory), naming the crash file
# (kept in $FUZZ_ARTIFACTS, default fuzz/artifacts/<target>/) and how to reproduce it.
#
# Environment: FUZZ_TARGET_DIR (build directory, default fuzz/target: keep it between runs,
# the first build takes long), FUZZ_ARTIFACTS, FUZZ_KEEP_CORPUS=DIR (copy each target's grown
# corpus there instead of throwing it away), FUZZ_RSS_LIMIT_MB (default 2048).
# Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

secs=${1:-30}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
target_dir=${FUZZ_TARGET_DIR:-$here/target}
artifacts=${FUZZ_ARTIFACTS:-$here/artifacts}
rss=${FUZZ_RSS_LIMIT_MB:-2048}
# The same flags for build and run, or `cargo fuzz run` rebuilds. 16 codegen units: a much
# shorter first build for a slightly slower fuzzer.
flags=(--codegen-units 16 --target-dir "$target_dir")

log() { printf '\n=== %s\n' "$*"; }

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

log "build (${targets[*]})"
start=$(date +%s)
if [ ${#targets[@]} -eq 1 ]; then
  cargo +nightly fuzz build "${flags[@]}" "${targets[0]}"
else
  cargo +nightly fuzz build "${flags[@]}"
fi
echo "build: $(( $(date +%s) - start )) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
crashed=0
total=0
for t in "${targets[@]}"; do
  log "$t: ${secs} s"
  mkdir -p "$work/$t" "$artifacts/$t"
  cp -r "corpus/$t/." "$work/$t/"
  # -timeout: an input running 10 s counts as a crash (a hang); -print_final_stats gives the
  # executions; inputs found go to the temporary corpus only.
  dict=()
  [ -f "dict/$t.dict" ] && dict=(-dict="dict/$t.dict")
  set +e
  cargo +nightly fuzz run "${flags[@]}" "$t" "$work/$t" -- "${dict[@]}" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb="$rss" -print_final_stats=1 \
    -artifact_prefix="$artifacts/$t/" 2>&1 | tee "$work/$t.log" | grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^Done|ERROR|panicked|SUMMARY|Test unit written"
  status=${PIPESTATUS[0]}
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  runs=${runs:-$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/$t.log" | tail -1)}
  runs=${runs:-0}
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/$t.log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$work/$t.log" | tail -1 | cut -d' ' -f2)
  rate=$(( runs / ( ${took:-$secs} > 0 ? ${took:-$secs} : 1 ) ))
  total=$(( total + runs ))
  crash=$(grep -oE "Test unit written to [^ ]+" "$work/$t.log" | tail -1 | sed 's/Test unit written to //' || true)
  if [ "$status" -ne 0 ] || [ -n "$crash" ]; then
    crashed=1
    summary+=("$(printf '%-18s %12s runs %8s/s  cov %-6s CRASH %s' "$t" "$runs" "$rate" "${cov:-?}" "${crash:-(exit $status, see log)}")")
    echo "reproduce: cd fuzz && cargo +nightly fuzz run ${flags[*]} $t ${crash:-<input>}"
    echo "(minimize: cargo +nightly fuzz tmin ${flags[*]} $t ${crash:-<input>}; keep the result in fuzz/artifacts-regressions/$t/)"
  else
    summary+=("$(printf '%-18s %12s runs %8s/s  cov %-6s ok' "$t" "$runs" "$rate" "${cov:-?}")")
  fi
  if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    mkdir -p "$FUZZ_KEEP_CORPUS/$t" && cp -r "$work/$t/." "$FUZZ_KEEP_CORPUS/$t/"
  fi
done

log "summary (${secs} s per target)"
printf '%s\n' "${summary[@]}"
echo "total: $total executions"
if [ "$crashed" -ne 0 ]; then
  echo "FAILED: crash(es) found (files above)"
  exit 1
fi
echo "0 crashes"
