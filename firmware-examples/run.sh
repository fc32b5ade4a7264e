#!/usr/bin/env bash
# Builds the bare-metal firmware examples, reports their flash and RAM use, boots each under
# QEMU and checks its tokens against the host runtime: `npu run --greedy --print-ids` on the
# reference executors (NPU_REFERENCE_BACKEND=1; the images run CpuFast's NEON / portable
# kernels) with the model file, target, scheme, context, prompt and token count the image
# reports.
#
#   firmware-examples/run.sh [aarch64-virt] [cortex-m]     # default: both
#
# Installs what is missing: Debian's qemu-system-arm (it has qemu-system-aarch64 too) and the
# rustup targets. Firmware builds go to $NPU_SIDE_TARGET_DIR (scripts/env.sh: the side
# workspaces' shared target directory, where scripts/lint.sh's clippy has already compiled the
# build scripts); the QEMU command line is each example's cargo runner (.cargo/config.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
source scripts/env.sh
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(aarch64-virt cortex-m)

if ! command -v qemu-system-aarch64 >/dev/null || ! command -v qemu-system-arm >/dev/null; then
  echo "firmware: installing qemu-system-arm from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
fi
for t in aarch64-unknown-none thumbv7em-none-eabihf; do
  rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done

target_base="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release --quiet -p npu-cli
npu="$target_base/release/npu"
fw_target="$NPU_SIDE_TARGET_DIR"

# Size of an ELF section (0 when absent).
section() {
  local hex
  hex="$(readelf -SW "$1" | sed 's/^ *\[ *[0-9]*\] *//' | awk -v s="$2" '$1 == s && !f { print $5; f = 1 }')"
  echo $((16#${hex:-0}))
}
# Size of the first symbol whose name contains $2.
symbol() { readelf -sW "$1" | awk -v s="$2" 'index($8, s) && !f { print $3 + 0; f = 1 } END { if (!f) print 0 }'; }
# A `key=value` field of the image's `npu-fw-run:` line.
field() { sed -n "s/^npu-fw-run:.* $2=\([^ ]*\).*/\1/p" "$1"; }
line() { sed -n "/^$2:/{s/^$2: *//;s/ *\$//;p;q}" "$1"; }

passed=0
failed=0
for ex in "${examples[@]}"; do
  dir="$repo/firmware-examples/$ex"
  [ -d "$dir" ] || { echo "firmware: no example $ex" >&2; exit 2; }
  triple="$(sed -n 's/^target = "\(.*\)"$/\1/p' "$dir/.cargo/config.toml")"
  read -ra qemu <<< "$(sed -n 's/^runner = "\(.*\)"$/\1/p' "$dir/.cargo/config.toml")"
  start=$SECONDS
  (cd "$dir" && CARGO_TARGET_DIR="$fw_target" cargo build --release --quiet)
  elf="$fw_target/$triple/release/npu-fw-$ex"
  echo "firmware: $ex: built in $((SECONDS - start)) s: $elf"

  # Flash (read-only image) and RAM, from the linked ELF.
  blob=$(symbol "$elf" npu_model_)
  text=$(( $(section "$elf" .text) + $(section "$elf" .vector_table) ))
  rodata=$(( $(section "$elf" .rodata) + $(section "$elf" .npu_model) - blob ))
  data=$(section "$elf" .data)
  bss=$(section "$elf" .bss)
  arena=$(symbol "$elf" ARENA)
  echo "firmware: $ex: flash: code $text B, rodata $rodata B, blob $blob B, data image $data B; RAM: data $data B, bss $bss B (arena $arena B)"

  out="$(mktemp)"
  start=$SECONDS
  status=0
  timeout 1800 "${qemu[@]}" "$elf" > "$out" 2>&1 < /dev/null || status=$?
  secs=$((SECONDS - start))
  sed 's/^/  | /' "$out"
  echo "firmware: $ex: QEMU exited with $status after $secs s"

  # The same run on the host.
  path="$(sed -n '/#\[npu_model(/,/)\]/s/.*path = "\([^"]*\)".*/\1/p' "$dir/src/main.rs" | head -n 1)"
  case "$path" in
    '${NPU_CACHE}'/*) model="$NPU_CACHE/${path#'${NPU_CACHE}'/}" ;;
    /*) model="$path" ;;
    *) model="$dir/$path" ;;
  esac
  host="$(mktemp)"
  ok=1
  if [ "$status" != 0 ]; then
    ok=0
  elif [ -z "$path" ]; then
    echo "firmware: $ex: no path = \"...\" in the #[npu_model] attribute of $dir/src/main.rs"; ok=0
  elif ! NPU_REFERENCE_BACKEND=1 "$npu" run "$model" --target "$(field "$out" target)" --quant "$(field "$out" quant)" \
      --ctx "$(field "$out" context)" --max-tokens "$(field "$out" max-tokens)" \
      --prompt "$(line "$out" prompt)" --greedy --print-ids > "$host" 2> "$host.err"; then
    echo "firmware: $ex: npu run failed:"; sed 's/^/  | /' "$host.err"; ok=0
  else
    want_prompt="$(sed -n 1p "$host")"; want_gen="$(sed -n 2p "$host")"
    got_prompt="$(line "$out" prompt-ids)"; got_gen="$(line "$out" generated-ids)"
    echo "firmware: $ex: host  prompt [$want_prompt] generated [$want_gen]"
    echo "firmware: $ex: image prompt [$got_prompt] generated [$got_gen]"
    [ -n "$want_prompt" ] && [ "$want_prompt" = "$got_prompt" ] && [ "$want_gen" = "$got_gen" ] || ok=0
  fi
  if [ "$ok" = 1 ]; then
    echo "firmware: $ex: PASS (tokens equal the host's)"; passed=$((passed + 1))
  else
    echo "firmware: $ex: FAIL"; failed=$((failed + 1))
  fi
  rm -f "$out" "$host" "$host.err"
done
# The MCU budget is a compile error: the cortex-m image declaring SmolLM2 (160 MB of int8
# weights, a 6 MB arena at context 256) instead of the tiny model must fail `cargo check`
# with both budget messages.
if [[ " ${examples[*]} " == *" cortex-m "* ]]; then
  work="$(mktemp -d)"
  cp -r "$repo/firmware-examples/cortex-m/." "$work/"
  sed -i -e "s#\.\./\.\./#$repo/#g" -e "s#\.\./fw-common#$repo/firmware-examples/fw-common#" "$work/Cargo.toml"
  sed -i 's#path = "[^"]*moby-tiny.gguf"#path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf"#' "$work/src/main.rs"
  status=0
  (cd "$work" && CARGO_TARGET_DIR="$fw_target" cargo check --release --quiet) > "$work/check.log" 2>&1 || status=$?
  if [ "$status" != 0 ] && grep -q "exceeds the 2 MiB flash budget" "$work/check.log" \
      && grep -q "exceed the 512 KiB RAM budget" "$work/check.log"; then
    echo "firmware: cortex-m budget: PASS (SmolLM2 on the MCU is a compile error naming both budgets)"
    passed=$((passed + 1))
  else
    echo "firmware: cortex-m budget: FAIL (cargo check exited $status)"; sed 's/^/  | /' "$work/check.log"
    failed=$((failed + 1))
  fi
  rm -rf "$work"
fi
echo "firmware: $passed passed, $failed failed"
[ "$failed" = 0 ]
