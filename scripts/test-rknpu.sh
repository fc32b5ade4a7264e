#!/usr/bin/env bash
# The RKNPU backend end to end through the `npu` CLI and the stand-in librknnrt (x86-64 CI):
# greedy ids of the tiny model with --backend rknpu equal --backend cpu for all five schemes
# with work on all 3 cores; without the library --backend rknpu exits 1 naming NPU_RKNN_LIB
# and --backend auto falls back to the CPU. (~30 s; the backend's own tests run in
# `cargo test --workspace`: rknpu-sim/tests/backend.rs.)
#
#   scripts/test-rknpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p rknpu-sim -p npu-cli
NPU=target/release/npu
LIB=target/release/librknnrt.so
TINY=models/tiny/moby-tiny.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for q in fp16 int8 int8_hadamard int4 int4_hadamard; do
  args=(run "$TINY" --target rk3588 --quant "$q" --greedy --print-ids --max-tokens 24 --prompt "Call me Ishmael. Some years ago")
  "$NPU" "${args[@]}" --backend cpu >"$tmp/cpu.txt" 2>/dev/null
  NPU_RKNN_LIB=$LIB RKNN_SIM_STATS="$tmp/stats.json" "$NPU" "${args[@]}" --backend rknpu >"$tmp/npu.txt" 2>"$tmp/npu.err"
  cmp -s "$tmp/cpu.txt" "$tmp/npu.txt" || { echo "test-rknpu: $q: ids differ"; diff "$tmp/cpu.txt" "$tmp/npu.txt"; exit 1; }
  calls=$(grep -o '"calls":[0-9]*' "$tmp/stats.json" | cut -d: -f2 | tr '\n' ' ')
  for c in $calls; do [ "$c" -gt 0 ] || { echo "test-rknpu: $q: a core did no work ($calls)"; exit 1; }; done
  echo "test-rknpu: $q: ids equal, runs per core: $calls"
done
set +e
NPU_RKNN_LIB=/nonexistent/librknnrt.so "$NPU" run "$TINY" --target rk3588 --quant int8 --backend rknpu --prompt x --max-tokens 1 >/dev/null 2>"$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "NPU_RKNN_LIB" "$tmp/err" || { echo "test-rknpu: missing library: rc $rc"; cat "$tmp/err"; exit 1; }
NPU_RKNN_LIB=/nonexistent/librknnrt.so "$NPU" run "$TINY" --target rk3588 --quant int8 --backend auto --greedy --print-ids --prompt "Call me Ishmael. Some years ago" --max-tokens 24 >"$tmp/auto.txt" 2>"$tmp/err"
grep -q "running on the CPU" "$tmp/err" && cmp -s "$tmp/auto.txt" <("$NPU" run "$TINY" --target rk3588 --quant int8 --backend cpu --greedy --print-ids --prompt "Call me Ishmael. Some years ago" --max-tokens 24 2>/dev/null) \
  || { echo "test-rknpu: --backend auto did not fall back"; cat "$tmp/err"; exit 1; }
echo "test-rknpu: missing library -> exit 1 with the message; auto -> CPU"
