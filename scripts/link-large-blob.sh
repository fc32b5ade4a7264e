#!/usr/bin/env bash
# What happens when a blob larger than 4 GiB is linked into an executable, per target: builds a
# sparse 4.5 GiB blob with marker bytes just past 2 GiB and 4 GiB, puts it in an object file
# the way npu-build's `embed = "object"` does (one 64-byte aligned data symbol; x86-64: also
# the large-data variant `.lrodata` with SHF_X86_64_LARGE), links it into a Rust program that
# declares it as `extern "C" static [u8; N]`, and runs the program (aarch64 under qemu-user),
# which prints the bytes it reads at both markers. Results: docs/large-blobs.md.
#
#   scripts/link-large-blob.sh [work-dir]      (default /tmp/npu-large-blob; needs ~10 GB free)
#
# NPU_BLOB_MIB sets the blob's size (default 4608 = 4.5 GiB; a marker past the end moves to
# the blob's last MiBs); NPU_BLOB_ROWS picks rows by name (default all:
# x86_64-rodata x86_64-lrodata aarch64-rodata); NPU_BLOB_MAP=1 keeps each link map in
# <work-dir>/<row>/map.txt.
#
# aarch64 uses the cross toolchain scripts/test-aarch64.sh installs (gcc-aarch64-linux-gnu,
# qemu-user); its rows are skipped when that is absent.
set -uo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/npu-large-blob}
mkdir -p "$W"
MIB=${NPU_BLOB_MIB:-4608}
ROWS=${NPU_BLOB_ROWS:-x86_64-rodata x86_64-lrodata aarch64-rodata}
LEN=$((MIB << 20))
# Marker offsets: 2 GiB + 1 MiB and 4 GiB + 1 MiB, each moved to the last MiB of a blob too
# short for it (a marker past the end would lengthen the file).
M2=$(((2048 + 1) << 20))
M4=$(((4096 + 1) << 20))
[ "$MIB" -gt 2049 ] || M2=$(((MIB - 2) << 20))
[ "$MIB" -gt 4097 ] || M4=$(((MIB - 1) << 20))

# The blob: sparse, two marker bytes.
rm -f "$W/blob.bin"
truncate -s "$LEN" "$W/blob.bin"
printf '\x5a' | dd of="$W/blob.bin" bs=1 seek="$M2" conv=notrunc status=none
printf '\xa5' | dd of="$W/blob.bin" bs=1 seek="$M4" conv=notrunc status=none

cat >"$W/main.rs" <<EOF
use std::io::Read;
unsafe extern "C" {
    #[link_name = "npu_model_large_blob"]
    static BLOB: [u8; $LEN];
}
fn main() {
    // Offsets come from stdin so nothing is folded at compile time.
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).unwrap();
    let base = unsafe { BLOB.as_ptr() } as usize;
    let main_at = main as *const () as usize;
    print!("blob at {base:#x}, main at {main_at:#x}, distance {} MiB;", base.abs_diff(main_at) >> 20);
    for off in s.split_whitespace().map(|w| w.parse::<usize>().unwrap()) {
        let b = unsafe { std::ptr::read_volatile(BLOB.as_ptr().add(off)) };
        print!(" byte[{off}] = {b:#04x}");
    }
    println!();
}
EOF

# One row: assemble the blob into `section` with `flags`, link for `target`, run.
row() {
  local name=$1 target=$2 as=$3 section=$4 flags=$5 linker=$6 runner=$7
  case " $ROWS " in *" $name "*) ;; *) return ;; esac
  local d="$W/$name"
  mkdir -p "$d"
  printf '\t.section %s,"%s",%%progbits\n\t.balign 64\n\t.globl npu_model_large_blob\n\t.type npu_model_large_blob,%%object\n\t.size npu_model_large_blob,%d\nnpu_model_large_blob:\n\t.incbin "%s",0,%d\n' \
    "$section" "$flags" "$LEN" "$W/blob.bin" "$LEN" >"$d/blob.s"
  local t0=$SECONDS
  if ! $as -o "$d/blob.o" "$d/blob.s" 2>"$d/as.err"; then
    echo "| $name | assemble failed: $(head -c 300 "$d/as.err" | tr '\n' ' ') |"
    return
  fi
  ar crs "$d/libblob.a" "$d/blob.o" 2>/dev/null || "${as%as}ar" crs "$d/libblob.a" "$d/blob.o"
  rm -f "$d/blob.o"
  local map=()
  [ -z "${NPU_BLOB_MAP:-}" ] || map=(-C "link-arg=-Wl,-Map=$d/map.txt")
  if ! rustc --edition 2021 -O --target "$target" -C linker="$linker" "${map[@]}" \
      -L "native=$d" -l static=blob -o "$d/main" "$W/main.rs" 2>"$d/link.err"; then
    local why
    why=$(grep -o -E "relocation truncated to fit[^']*|[^ ]* out of range[^']*|relocation [^ ]* out of range[^']*|section .* will not fit[^']*|error: [^']*" "$d/link.err" | sort -u | head -3 | tr '\n' ';')
    echo "| $name | link fails ($((SECONDS - t0)) s): ${why:-$(tail -c 300 "$d/link.err" | tr '\n' ' ')} |"
    rm -f "$d/libblob.a"
    return
  fi
  rm -f "$d/libblob.a"
  local size
  size=$(stat -c %s "$d/main")
  local out
  out=$(echo "$M2 $M4" | $runner "$d/main" 2>&1 | tail -1)
  echo "| $name | links ($((SECONDS - t0)) s), executable $((size >> 20)) MiB; runs: $out |"
  rm -f "$d/main"
}

echo "| case ($MIB MiB blob) | result |"
echo "|---|---|"
X=x86_64-unknown-linux-gnu
row x86_64-rodata "$X" as .rodata.npu_model a cc ""
row x86_64-lrodata "$X" as .lrodata.npu_model al cc ""
A=aarch64-unknown-linux-gnu
if command -v aarch64-linux-gnu-as >/dev/null && rustup target list --installed | grep -qx "$A"; then
  runner=""
  command -v qemu-aarch64 >/dev/null && runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"
  row aarch64-rodata "$A" aarch64-linux-gnu-as .rodata.npu_model a aarch64-linux-gnu-gcc "$runner"
else
  echo "| aarch64 | skipped: no aarch64-linux-gnu toolchain (scripts/test-aarch64.sh installs it) |"
fi
rm -f "$W/blob.bin"
