//! SmolLM2-135M-Instruct compiled into a bare-metal AArch64 image for QEMU `virt` with a
//! Cortex-A76 (the RK3588's big core): it tokenizes a fixed prompt, generates a greedy
//! continuation on the fast CPU backend (`CpuFast`: NEON kernels, bit-exact to the reference
//! executors, i.e. to what the RK3588 NPU computes for `int8`), prints prompt ids, text and
//! generated ids over the PL011 UART, and exits through semihosting with status 0 (1 on any
//! error). No heap: the weights are linked in, the
//! arena is a static buffer in .bss.
#![no_std]
#![no_main]
#![deny(missing_docs)]

mod boot;

use boot::Uart;
use core::fmt::Write;
use core::ptr::addr_of_mut;
use npu_fw_common::Buffers;
use npu_model_macro::npu_model;
use npu_runtime::cpu::CpuFast;
use npu_runtime::tokenizer::Tokenizer;

/// SmolLM2-135M-Instruct for the RK3588's int8 pipeline, with a 64-position KV cache.
#[npu_model(
    path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf",
    target = "rk3588",
    quant = "int8",
    context = 64,
    embed = "object"
)]
pub struct SmolLm2;

/// The prompt (tokenized on the device, as `npu run --prompt` tokenizes it on the host).
const PROMPT: &str = "Once upon a time";
/// Tokens to generate (under QEMU TCG each one takes about a second).
const MAX_TOKENS: usize = 32;

/// Blob budget: the 382 MiB image region (link.ld) less 8 MiB kept for code and rodata.
const BLOB_BUDGET: usize = 374 << 20;
/// Arena budget: the 128 MiB RAM region (link.ld) less the 1 MiB stack and 1 MiB for the
/// other statics.
const ARENA_BUDGET: usize = 126 << 20;
const _: () = assert!(
    SmolLm2::BLOB_LEN <= BLOB_BUDGET,
    "aarch64-virt: the packed model exceeds the 374 MiB blob budget of the image region (link.ld); choose a smaller quant"
);
const _: () = assert!(
    SmolLm2::ARENA_BYTES <= ARENA_BUDGET,
    "aarch64-virt: the session arena exceeds the 126 MiB RAM budget (link.ld); lower `context`"
);

/// The session's arena: KV cache, activations, logits (in .bss, zeroed at boot).
static mut ARENA: [u8; SmolLm2::ARENA_BYTES] = [0; SmolLm2::ARENA_BYTES];
/// Tokenizer working memory for the prompt.
static mut TOK_SCRATCH: [u32; Tokenizer::scratch_words_for(PROMPT.len())] =
    [0; Tokenizer::scratch_words_for(PROMPT.len())];

/// Entered from `_start` with FP/SIMD and the MMU on, a stack, and .bss zeroed.
#[no_mangle]
pub extern "C" fn npu_fw_main() -> ! {
    boot::paint_stack();
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(Uart, "npu-fw: error: {e}");
            1
        }
    };
    boot::exit(code)
}

fn run() -> Result<(), npu_fw_common::Failure> {
    let mut out = Uart;
    let map = boot::memory_map();
    writeln!(
        out,
        "npu-fw: aarch64-virt (QEMU virt, Cortex-A76); SmolLm2 {:?}/{} context {}",
        SmolLm2::TARGET,
        SmolLm2::SCHEME.name(),
        SmolLm2::CONTEXT
    )?;
    writeln!(
        out,
        "npu-fw: image {} bytes: blob {}, code+rodata {}; ram {} bytes static: arena {}; stack {} reserved",
        map.image,
        map.blob,
        map.image - map.blob,
        map.ram_static,
        SmolLm2::ARENA_BYTES,
        map.stack
    )?;
    let mut prompt_ids = [0u32; SmolLm2::CONTEXT as usize];
    let mut generated = [0u32; MAX_TOKENS];
    // SAFETY: the only references to ARENA and TOK_SCRATCH; run() is called once, on one core.
    let bufs = unsafe {
        Buffers {
            arena: &mut *addr_of_mut!(ARENA),
            tok_scratch: &mut *addr_of_mut!(TOK_SCRATCH),
            prompt_ids: &mut prompt_ids,
            generated: &mut generated,
        }
    };
    let report =
        npu_fw_common::run(&mut out, SmolLm2::model(), CpuFast::new(), PROMPT, bufs, || {
            boot::ticks().0
        })?;
    npu_fw_common::print_timing(&mut out, &report, boot::ticks().1)?;
    writeln!(out, "npu-fw: stack used {} of {} bytes", boot::stack_used(), map.stack)?;
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "npu-fw: panic: {info}");
    boot::exit(101)
}
