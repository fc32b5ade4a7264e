//! Boot, MMU, console and exit for QEMU `virt` at EL1 (QEMU enters an ELF's entry point at
//! EL1 with the MMU off when no firmware is given).
//!
//! Before any Rust code runs, `_start` enables FP/SIMD (Rust uses q registers for floats
//! and memcpy; with CPACR_EL1.FPEN clear they trap) and the MMU with an identity map:
//! with the MMU off every data access is Device memory, where unaligned accesses fault and
//! nothing is cached. Then it sets the stack, zeroes .bss and calls [`npu_fw_main`].

use core::arch::{asm, global_asm};

/// A 1 GiB block descriptor: valid block, access flag set (no access-flag faults).
const BLOCK: u64 = 0b01 | (1 << 10);
/// MAIR attribute index 0: Device-nGnRnE; never executable (PXN | UXN), so the core does not
/// fetch speculatively from device registers. (AttrIndx, bits 2..5, is 0.)
const DEVICE: u64 = (1 << 53) | (1 << 54);
/// MAIR attribute index 1: Normal, write-back cacheable, inner shareable.
const NORMAL: u64 = (1 << 2) | (0b11 << 8);

/// The level-1 translation table for TTBR0_EL1 (4 KiB granule, 32-bit VA space: four 1 GiB
/// entries). Identity map: GiB 0 holds the devices (PL011 at 0x0900_0000), GiB 1 the RAM.
#[repr(C, align(4096))]
pub struct PageTable([u64; 512]);

#[no_mangle]
static BOOT_PAGE_TABLE: PageTable = {
    let mut t = [0u64; 512];
    t[0] = BLOCK | DEVICE;
    t[1] = BLOCK | NORMAL | (1 << 30);
    PageTable(t)
};

// MAIR_EL1 = 0xff00: attr0 Device-nGnRnE (0x00), attr1 Normal WB RW-allocate (0xff).
// TCR_EL1 = T0SZ 32 | IRGN0 WB | ORGN0 WB | SH0 inner | TG0 4K | EPD1 (no TTBR1 walks) |
//           IPS 32-bit = 0x80_3520.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, 3f
    mov     x0, #(3 << 20)
    msr     cpacr_el1, x0
    isb
    adrp    x0, BOOT_PAGE_TABLE
    add     x0, x0, :lo12:BOOT_PAGE_TABLE
    msr     ttbr0_el1, x0
    mov     x0, #0xff00
    msr     mair_el1, x0
    movz    x0, #0x3520
    movk    x0, #0x80, lsl #16
    msr     tcr_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x0, sctlr_el1
    orr     x0, x0, #(1 << 0)
    orr     x0, x0, #(1 << 2)
    orr     x0, x0, #(1 << 12)
    bic     x0, x0, #(1 << 1)
    msr     sctlr_el1, x0
    isb
    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  bl      npu_fw_main
3:  wfe
    b       3b
"#
);

/// PL011 data register of QEMU `virt`; QEMU's model needs no baud-rate setup.
const UART_DR: *mut u32 = 0x0900_0000 as *mut u32;
/// PL011 flag register; bit 5 = transmit FIFO full.
const UART_FR: *const u32 = 0x0900_0018 as *const u32;

/// The PL011 UART as a `core::fmt::Write`.
pub struct Uart;

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            // SAFETY: PL011 registers of the virt machine, identity-mapped as Device memory.
            unsafe {
                while UART_FR.read_volatile() & (1 << 5) != 0 {}
                UART_DR.write_volatile(u32::from(b));
            }
        }
        Ok(())
    }
}

/// Ends the program through semihosting SYS_EXIT (ADP_Stopped_ApplicationExit with
/// `code`): QEMU started with `-semihosting` exits with that status.
pub fn exit(code: u32) -> ! {
    let block: [u64; 2] = [0x20026, u64::from(code)];
    // SAFETY: the semihosting trap (HLT #0xF000) reads the two-word block x1 points to.
    unsafe {
        asm!("hlt #0xf000", in("w0") 0x18u32, in("x1") block.as_ptr(), options(nostack));
    }
    // Without -semihosting the trap is an undefined instruction; park the core.
    loop {
        // SAFETY: waiting for an event has no effect on memory.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}

/// The generic timer's virtual count and frequency (under QEMU TCG it follows host time).
pub fn ticks() -> (u64, u64) {
    let (c, f): (u64, u64);
    // SAFETY: reading EL0-accessible timer registers.
    unsafe {
        asm!("isb", "mrs {c}, cntvct_el0", "mrs {f}, cntfrq_el0", c = out(reg) c, f = out(reg) f, options(nomem, nostack));
    }
    (c, f)
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __npu_blob_start: u8;
    static __npu_blob_end: u8;
    static __ram_start: u8;
    static __bss_end: u8;
    static __stack_bottom: u8;
    static __stack_top: u8;
}

/// Sizes of the linked image, from the linker script's symbols.
pub struct MemoryMap {
    /// Bytes of the read-only image (code, rodata, blob).
    pub image: usize,
    /// Bytes of the blob section.
    pub blob: usize,
    /// Bytes of data + bss.
    pub ram_static: usize,
    /// Bytes reserved for the stack.
    pub stack: usize,
}

/// Reads the linker's symbols.
pub fn memory_map() -> MemoryMap {
    let a = |s: &u8| s as *const u8 as usize;
    // SAFETY: only the addresses of linker-defined symbols are taken, never their contents.
    unsafe {
        MemoryMap {
            image: a(&__image_end) - a(&__image_start),
            blob: a(&__npu_blob_end) - a(&__npu_blob_start),
            ram_static: a(&__bss_end) - a(&__ram_start),
            stack: a(&__stack_top) - a(&__stack_bottom),
        }
    }
}

/// Byte painted over the unused stack, to measure its high-water mark.
const STACK_PAINT: u8 = 0xA5;

fn stack_bounds() -> (usize, usize) {
    // SAFETY: addresses of linker-defined symbols only.
    unsafe { (&__stack_bottom as *const u8 as usize, &__stack_top as *const u8 as usize) }
}

/// Paints the stack below the caller's frame (minus a margin for this function's own frame).
#[inline(never)]
pub fn paint_stack() {
    let (bottom, _) = stack_bounds();
    let sp: usize;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    let mut p = bottom;
    while p < sp.saturating_sub(512) {
        // SAFETY: [bottom, sp - 512) is reserved stack no live frame uses yet.
        unsafe { (p as *mut u8).write_volatile(STACK_PAINT) };
        p += 1;
    }
}

/// Deepest stack use since [`paint_stack`], in bytes.
pub fn stack_used() -> usize {
    let (bottom, top) = stack_bounds();
    let mut p = bottom;
    // SAFETY: reads within the reserved stack region.
    while p < top && unsafe { (p as *const u8).read_volatile() } == STACK_PAINT {
        p += 1;
    }
    top - p
}
