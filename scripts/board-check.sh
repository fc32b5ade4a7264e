#!/usr/bin/env bash
# For someone with a real RK3588 board (Rockchip BSP kernel, librknnrt installed): checks the
# NPU path end to end against the CPU and prints a report to paste into docs/rknpu-backend.md.
#
#   scripts/board-check.sh [MODEL.gguf]      (default: $NPU_CACHE/smollm2-135m-instruct-q4_1.gguf)
#
# 1. `npu doctor` with the model's NPU buffer count (device, driver, librknnrt, governors,
#    big cores, ulimit -n);
# 2. every matmul shape of the model through the real library against the CPU reference,
#    bit for bit (the rknpu-sim backend test binary, run with the board's librknnrt);
# 3. greedy tokens of every scheme, `--backend rknpu` against `--backend cpu`;
# 4. decode and prefill tok/s of both backends on the big cores.
# Never run it as root: librknnrt creates device nodes when it runs as root.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
MODEL="${1:-$NPU_CACHE/smollm2-135m-instruct-q4_1.gguf}"
if [ "$(id -u)" = 0 ]; then
  echo "board-check: do not run as root (librknnrt creates device nodes under /dev as root)" >&2
  exit 1
fi
cargo build --release -p npu-cli >/dev/null || exit 1
NPU=target/release/npu
export NPU_RKNN_LIB="${NPU_RKNN_LIB:-/usr/lib/librknnrt.so}"
out=$(mktemp)
say() { echo "$*" | tee -a "$out"; }
say "## Board check $(date -u +%Y-%m-%d) — $(tr -d '\0' </proc/device-tree/model 2>/dev/null || uname -n)"
say "- kernel $(uname -r); librknnrt $NPU_RKNN_LIB; commit $(git rev-parse --short HEAD 2>/dev/null)"
say ""
say "### npu doctor"
$NPU doctor --model "$MODEL" --target rk3588 --quant int8_hadamard 2>&1 | sed 's/^/    /' | tee -a "$out"
big=$($NPU doctor 2>/dev/null | sed -n 's/.*taskset -c \([0-9,]*\).*/\1/p' | head -1)
TS=""; [ -n "$big" ] && TS="taskset -c $big"
say ""
say "### Matmul shapes through the real library (bit-exact vs the CPU reference)"
# The backend test binary, with the board's library instead of the stand-in next to it.
bin=$(cargo test --release -p rknpu-sim --test backend --no-run 2>&1 | sed -n 's/.*(\(target[^)]*backend-[^)]*\)).*/\1/p' | tail -1)
dir=$(dirname "$bin")
cp -f "$NPU_RKNN_LIB" "$dir/librknnrt.so"
if "$bin" matmuls_are_bit_exact several_iommu_domains tiny_model --test-threads 1 >/tmp/board-check-tests.txt 2>&1; then
  say "- all shapes bit-exact (rk3588 part; rk3576/rk3566 cases need those chips): PASS"
else
  say "- FAIL: see /tmp/board-check-tests.txt"; sed 's/^/    /' /tmp/board-check-tests.txt | tail -20 | tee -a "$out"
fi
rm -f "$dir/librknnrt.so"
say ""
say "### Greedy tokens, --backend rknpu vs --backend cpu ($(basename "$MODEL"))"
say "| scheme | same ids | cpu decode tok/s | rknpu decode tok/s | rknpu prefill tok/s |"
say "|---|---|---|---|---|"
for q in fp16 int8 int8_hadamard int4 int4_hadamard; do
  $TS $NPU run "$MODEL" --target rk3588 --quant $q --backend cpu --greedy --print-ids --max-tokens 64 \
    --prompt "The history of the city begins" >/tmp/bc-cpu.txt 2>/tmp/bc-cpu.err
  $TS $NPU run "$MODEL" --target rk3588 --quant $q --backend rknpu --greedy --print-ids --max-tokens 64 \
    --prompt "The history of the city begins" >/tmp/bc-npu.txt 2>/tmp/bc-npu.err
  same=no; cmp -s /tmp/bc-cpu.txt /tmp/bc-npu.txt && same=yes
  rate() { sed -n "s/.*generated [0-9]* in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p" "$1" | tail -1; }
  pre() { sed -n "s/.*prompt [0-9]* tokens in [0-9.]* s (\([0-9.]*\) tok\/s).*/\1/p" "$1" | tail -1; }
  [ -s /tmp/bc-npu.txt ] || same="error: $(tail -1 /tmp/bc-npu.err)"
  say "| $q | $same | $(rate /tmp/bc-cpu.err) | $(rate /tmp/bc-npu.err) | $(pre /tmp/bc-npu.err) |"
done
say ""
say "(fp16 may differ in rare ids: the NPU sums fp16 products in its own order; integer schemes must match.)"
echo
echo "board-check: report in $out"
