//! The ~1M-parameter tiny llama of `models/tiny/` compiled into a Cortex-M4F image for
//! QEMU's MPS2-AN386 board: it tokenizes a fixed prompt, generates a greedy continuation
//! on the fast CPU backend (`CpuFast`, portable kernels, bit-exact to the reference
//! executors), prints prompt ids, text and generated ids over the CMSDK
//! UART and exits through semihosting (status 0, or 1 on any error). No heap: the weights
//! are linked into flash, the arena is a static buffer in .bss.
//!
//! The MCU budget (at most 2 MiB of flash for the blob, 512 KiB of RAM for arena and KV
//! cache) is checked at compile time from the generated consts.
#![no_std]
#![no_main]
#![deny(missing_docs)]

use core::fmt::Write;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::debug;
use npu_fw_common::Buffers;
use npu_model_macro::npu_model;
use npu_runtime::cpu::CpuFast;
use npu_runtime::tokenizer::Tokenizer;

/// The tiny llama (1,024-token byte-level BPE, 4 layers, d 128) on the CPU target, int8
/// weights, with its full 256-position context.
#[npu_model(
    path = "../../models/tiny/moby-tiny.gguf",
    target = "cpu",
    quant = "int8",
    context = 256,
    embed = "object"
)]
pub struct Tiny;

/// The prompt (tokenized on the device, as `npu run --prompt` tokenizes it on the host).
const PROMPT: &str = "Call me Ishmael.";
/// Tokens to generate.
const MAX_TOKENS: usize = 32;

/// Flash for the packed weights on the MCU this image stands for.
const BLOB_BUDGET: usize = 2 << 20;
/// RAM for the session arena (KV cache + activations) on that MCU.
const ARENA_BUDGET: usize = 512 << 10;
const _: () = assert!(Tiny::BLOB_LEN <= BLOB_BUDGET, "cortex-m: the packed model exceeds the 2 MiB flash budget for the blob; choose a smaller quant or model");
const _: () = assert!(
    Tiny::ARENA_BYTES <= ARENA_BUDGET,
    "cortex-m: arena and KV cache exceed the 512 KiB RAM budget; lower `context`"
);

/// The session's arena (in .bss, zeroed by cortex-m-rt).
static mut ARENA: [u8; Tiny::ARENA_BYTES] = [0; Tiny::ARENA_BYTES];
/// Tokenizer working memory for the prompt.
static mut TOK_SCRATCH: [u32; Tokenizer::scratch_words_for(PROMPT.len())] =
    [0; Tokenizer::scratch_words_for(PROMPT.len())];

/// CMSDK APB UART0 of the MPS2 boards.
const UART_DATA: *mut u32 = 0x4000_4000 as *mut u32;
const UART_STATE: *const u32 = 0x4000_4004 as *const u32;
const UART_CTRL: *mut u32 = 0x4000_4008 as *mut u32;
const UART_BAUDDIV: *mut u32 = 0x4000_4010 as *mut u32;

/// The CMSDK UART as a `core::fmt::Write`.
struct Uart;

impl Uart {
    fn init() {
        // SAFETY: UART0 registers of the MPS2 board. QEMU requires a divider of at least 16.
        unsafe {
            UART_BAUDDIV.write_volatile(16);
            UART_CTRL.write_volatile(1); // TX enable
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: as in `init`; STATE bit 0 = transmit buffer full.
            unsafe {
                while UART_STATE.read_volatile() & 1 != 0 {}
                UART_DATA.write_volatile(u32::from(b));
            }
        }
        Ok(())
    }
}

/// SysTick wraps: the 24-bit counter is extended in software.
static SYSTICK_WRAPS: AtomicU32 = AtomicU32::new(0);
/// SysTick reload: the full 24 bits.
const SYST_RELOAD: u32 = 0x00FF_FFFF;
/// The AN386's processor clock (SysTick counts it with the core clock source).
const CPU_HZ: u64 = 25_000_000;

#[exception]
fn SysTick() {
    SYSTICK_WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Core clock ticks since the timer started.
fn ticks() -> u64 {
    loop {
        let w = SYSTICK_WRAPS.load(Ordering::Acquire);
        let cur = cortex_m::peripheral::SYST::get_current();
        // A wrap between the two reads would pair a new count with an old wrap number.
        if SYSTICK_WRAPS.load(Ordering::Acquire) == w {
            return u64::from(w) * (u64::from(SYST_RELOAD) + 1) + u64::from(SYST_RELOAD - cur);
        }
    }
}

extern "C" {
    /// End of .bss (cortex-m-rt's heap start; nothing uses a heap here).
    static __sheap: u8;
    /// Initial stack pointer: the top of RAM.
    static _stack_start: u8;
    /// Start of flash and end of .rodata (cortex-m-rt).
    static __erodata: u8;
    /// Start of .data in RAM and its load address in flash.
    static __sdata: u8;
    static __edata: u8;
}

const STACK_PAINT: u8 = 0xA5;

fn addr(s: &u8) -> usize {
    s as *const u8 as usize
}

/// Paints the free stack below this frame (less a margin), to measure the high-water mark.
#[inline(never)]
fn paint_stack() {
    // SAFETY: addresses of linker symbols; [__sheap, sp - 256) is stack no frame uses yet.
    unsafe {
        let sp = cortex_m::register::msp::read() as usize;
        let mut p = addr(&__sheap);
        while p < sp.saturating_sub(256) {
            (p as *mut u8).write_volatile(STACK_PAINT);
            p += 1;
        }
    }
}

fn stack_used() -> usize {
    // SAFETY: reads within [__sheap, _stack_start), RAM this image owns.
    unsafe {
        let (bottom, top) = (addr(&__sheap), addr(&_stack_start));
        let mut p = bottom;
        while p < top && (p as *const u8).read_volatile() == STACK_PAINT {
            p += 1;
        }
        top - p
    }
}

#[entry]
fn main() -> ! {
    Uart::init();
    paint_stack();
    if let Some(mut p) = cortex_m::Peripherals::take() {
        p.SYST.set_clock_source(SystClkSource::Core);
        p.SYST.set_reload(SYST_RELOAD);
        p.SYST.clear_current();
        p.SYST.enable_interrupt();
        p.SYST.enable_counter();
    }
    let code = match run() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(e) => {
            let _ = writeln!(Uart, "npu-fw: error: {e}");
            debug::EXIT_FAILURE
        }
    };
    debug::exit(code);
    loop {
        cortex_m::asm::wfi();
    }
}

fn run() -> Result<(), npu_fw_common::Failure> {
    let mut out = Uart;
    // SAFETY: addresses of cortex-m-rt's linker symbols only.
    let (flash_used, data, stack) = unsafe {
        (
            addr(&__erodata) + (addr(&__edata) - addr(&__sdata)),
            addr(&__sheap) - addr(&__sdata),
            addr(&_stack_start) - addr(&__sheap),
        )
    };
    writeln!(
        out,
        "npu-fw: cortex-m (QEMU MPS2-AN386, Cortex-M4F); Tiny {:?}/{} context {}",
        Tiny::TARGET,
        Tiny::SCHEME.name(),
        Tiny::CONTEXT
    )?;
    writeln!(
        out,
        "npu-fw: flash {flash_used} bytes: blob {} (budget {BLOB_BUDGET}), code+rodata+data {}; ram {data} bytes static: arena {} (budget {ARENA_BUDGET}); stack {stack} available",
        Tiny::BLOB_LEN,
        flash_used - Tiny::BLOB_LEN,
        Tiny::ARENA_BYTES,
    )?;
    let mut prompt_ids = [0u32; 64];
    let mut generated = [0u32; MAX_TOKENS];
    // SAFETY: the only references to ARENA and TOK_SCRATCH; run() is called once.
    let bufs = unsafe {
        Buffers {
            arena: &mut *addr_of_mut!(ARENA),
            tok_scratch: &mut *addr_of_mut!(TOK_SCRATCH),
            prompt_ids: &mut prompt_ids,
            generated: &mut generated,
        }
    };
    let report = npu_fw_common::run(&mut out, Tiny::model(), CpuFast::new(), PROMPT, bufs, ticks)?;
    npu_fw_common::print_timing(&mut out, &report, CPU_HZ)?;
    writeln!(out, "npu-fw: stack used {} of {stack} bytes", stack_used())?;
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Uart, "npu-fw: panic: {info}");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
