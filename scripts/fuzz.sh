#!/usr/bin/env bash
# Runs every fuzz target of npu-build/fuzz for MINUTES each (default 30), installing what it
# needs, and prints each target's executions, coverage and outcome.
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]
#
# Targets: gguf_read (reader + dequantizers on raw bytes), pack_model (structure-aware model
# files through tokenizer, shape check, packer and a session), tokenizer (hostile
# vocabularies, arbitrary text), sampler (arbitrary logits and settings), session (one valid
# model fed arbitrary ids). FUZZ_JOBS=N runs N targets at once (default 1); every run is
# `nice -n 19`.
#
# The machine has only a stable Rust toolchain. cargo-fuzz (from crates.io) passes nightly
# compiler flags; RUSTC_BOOTSTRAP=1 lets stable rustc accept them. `--sanitizer none` drops
# AddressSanitizer (whose runtime flag `-Zsanitizer` is nightly-only in effect and slows
# each execution ~2x): the code under test is safe Rust, so a panic (index, overflow with
# debug assertions on, explicit assert) is what finds a bug; coverage instrumentation
# (sancov) still guides the search. FUZZ_SANITIZER=address restores ASan.
#
# New corpus inputs go to npu-build/fuzz/corpus/<target>/, crashes to
# npu-build/fuzz/artifacts/<target>/ (both git-ignored); replay a crash with
#   cd npu-build/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/../npu-build/fuzz"
MINUTES="${1:-30}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(gguf_read pack_model tokenizer sampler session)
JOBS="${FUZZ_JOBS:-1}"
SAN="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  nice -n 19 cargo install cargo-fuzz --locked
fi
for t in "${TARGETS[@]}"; do
  nice -n 19 cargo fuzz build -s "$SAN" --debug-assertions "$t"
done

mkdir -p logs
run_one() {
  local t=$1 seeds=()
  mkdir -p "corpus/$t"
  [ "$t" = gguf_read ] && seeds=(corpus/seed)
  local log="logs/$t.log"
  echo "fuzz.sh: $t for $MINUTES min (log npu-build/fuzz/$log)"
  local rc=0
  nice -n 19 cargo fuzz run -s "$SAN" --debug-assertions "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time=$((MINUTES * 60)) -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ "$rc" = 0 ]; then
    echo "fuzz.sh: $t: ${runs:-?} executions in $MINUTES min, $cov, no crash"
  else
    echo "fuzz.sh: $t: CRASH (exit $rc) after ${runs:-?} executions; see $log and artifacts/$t/"
  fi
  return "$rc"
}

status=0
pids=()
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do
  wait "$p" || status=1
done
exit "$status"
