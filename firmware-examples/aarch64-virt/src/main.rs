//! SmolLM2-135M-Instruct compiled into a bare-metal AArch64 image for QEMU `virt` with a
//! Cortex-A76 (the RK3588's big core): it tokenizes a fixed prompt, generates a greedy
//! continuation with the reference CPU backend (what the RK3588 NPU computes for `int8`),
//! prints prompt ids, text and generated ids over the PL011 UART, and exits through
//! semihosting with status 0 (1 on any error). No heap: the weights are linked in, the
//! arena is a static buffer in .bss.
#![no_std]
#![no_main]
#![deny(missing_docs)]

mod boot;

use boot::Uart;
use core::fmt::Write;
use core::ptr::addr_of_mut;
use npu_model_macro::npu_model;
use npu_runtime::backend::CpuReference;
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::Session;
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::tokenizer::{EncodeOptions, Tokenizer, Utf8Stream};

/// SmolLM2-135M-Instruct for the RK3588's int8 pipeline, with a 64-position KV cache.
#[npu_model(path = "${NPU_CACHE}/smollm2-135m-instruct-q4_1.gguf", target = "rk3588", quant = "int8", context = 64, embed = "object")]
pub struct SmolLm2;

/// The prompt (tokenized on the device, as `npu run --prompt` tokenizes it on the host).
const PROMPT: &str = "Once upon a time";
/// Tokens to generate (kept small: the reference backend under QEMU TCG is slow).
const MAX_TOKENS: usize = 12;

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
static mut TOK_SCRATCH: [u32; Tokenizer::scratch_words_for(PROMPT.len())] = [0; Tokenizer::scratch_words_for(PROMPT.len())];

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

/// Errors as text, so one `?` path covers the tokenizer, the model and the console.
struct Failure(&'static str, Detail);

enum Detail {
    Model(npu_runtime::model::ModelError),
    Tokenizer(npu_runtime::tokenizer::TokenizerError),
    None,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.1 {
            Detail::Model(e) => write!(f, "{}: {e}", self.0),
            Detail::Tokenizer(e) => write!(f, "{}: {e}", self.0),
            Detail::None => f.write_str(self.0),
        }
    }
}

impl From<core::fmt::Error> for Failure {
    fn from(_: core::fmt::Error) -> Self {
        Failure("console", Detail::None)
    }
}

fn run() -> Result<(), Failure> {
    let mut out = Uart;
    let m = SmolLm2::model();
    let map = boot::memory_map();
    writeln!(out, "npu-fw: aarch64-virt (QEMU virt, Cortex-A76); SmolLm2 rk3588/{} context {}", SmolLm2::SCHEME.name(), SmolLm2::CONTEXT)?;
    writeln!(
        out,
        "npu-fw: image {} bytes (blob {}, code+rodata {}); ram {} bytes static (arena {}), stack {} reserved",
        map.image,
        map.blob,
        map.image - map.blob,
        map.ram_static,
        SmolLm2::ARENA_BYTES,
        map.stack
    )?;
    if map.blob != SmolLm2::BLOB_LEN || map.bss < SmolLm2::ARENA_BYTES {
        return Err(Failure("the linked blob or arena differs from the generated sizes", Detail::None));
    }

    let tok = m.tokenizer().map_err(|e| Failure("tokenizer tables", Detail::Tokenizer(e)))?;
    let mut prompt = [0u32; SmolLm2::CONTEXT as usize];
    // SAFETY: the only reference to TOK_SCRATCH; run() is called once, on one core.
    let scratch = unsafe { &mut *addr_of_mut!(TOK_SCRATCH) };
    let opts = EncodeOptions { add_special: true, parse_special: true };
    let n_prompt = tok.encode(PROMPT.as_bytes(), opts, scratch, &mut prompt).map_err(|e| Failure("encoding the prompt", Detail::Tokenizer(e)))?;
    let prompt = &prompt[..n_prompt];
    writeln!(out, "npu-fw: prompt {PROMPT:?}")?;
    write!(out, "prompt-ids:")?;
    for id in prompt {
        write!(out, " {id}")?;
    }
    writeln!(out)?;

    // SAFETY: the only reference to ARENA (see TOK_SCRATCH).
    let arena = unsafe { &mut *addr_of_mut!(ARENA) };
    let mut session = Session::new(*m, CpuReference, arena).map_err(|e| Failure("session", Detail::Model(e)))?;
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let mut ids = [0u32; MAX_TOKENS];
    let mut n = 0usize;
    let mut piece = [0u8; 256];
    let mut text = Utf8Stream::new();
    let mut console_ok = true;
    write!(out, "text: ")?;
    let (t0, freq) = boot::ticks();
    let mut t_first = t0;
    let res = generate(&mut session, &mut sampler, prompt, MAX_TOKENS, |id| {
        if n == 0 {
            t_first = boot::ticks().0;
        }
        if let Some(slot) = ids.get_mut(n) {
            *slot = id;
        }
        n += 1;
        // Control tokens are not rendered, as `npu run` shows text.
        let ok = match tok.piece(id, false, false, &mut piece) {
            Ok(len) => text.push(&piece[..len], &mut |s: &str| Uart.write_str(s)).is_ok(),
            Err(_) => Uart.write_str("\u{FFFD}").is_ok(),
        };
        console_ok &= ok;
        true
    })
    .map_err(|e| Failure("generation", Detail::Model(e)))?;
    let t_end = boot::ticks().0;
    text.finish(&mut |s: &str| Uart.write_str(s))?;
    writeln!(out)?;
    if !console_ok {
        return Err(Failure("console", Detail::None));
    }
    write!(out, "generated-ids:")?;
    for id in &ids[..n.min(MAX_TOKENS)] {
        write!(out, " {id}")?;
    }
    writeln!(out)?;
    let stop = match res.stop {
        StopReason::EndToken(_) => "end token",
        StopReason::MaxTokens => "max tokens",
        StopReason::ContextFull => "context full",
        StopReason::Callback => "callback",
    };
    let ms = |a: u64, b: u64| (b - a) * 1000 / freq.max(1);
    let gen_ms = ms(t_first, t_end);
    // Tokens after the first one, per second of emulated time (the first comes with the prefill).
    let tps_milli = (n.saturating_sub(1) as u64 * 1_000_000).checked_div(gen_ms).unwrap_or(0);
    writeln!(
        out,
        "npu-fw: prefill {} tokens in {} ms; {} tokens in {} ms after it ({}.{:03} tok/s under emulation); stop: {stop}",
        prompt.len(),
        ms(t0, t_first),
        n.saturating_sub(1),
        gen_ms,
        tps_milli / 1000,
        tps_milli % 1000
    )?;
    writeln!(out, "npu-fw: stack used {} of {} bytes", boot::stack_used(), map.stack)?;
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "npu-fw: panic: {info}");
    boot::exit(101)
}
