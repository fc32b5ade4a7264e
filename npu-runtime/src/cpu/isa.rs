//! CPU feature detection: which kernel sets this machine (and OS) can run.
//!
//! AVX2+F16C on x86/x86-64 (`is_x86_feature_detected!` with `std`; without `std`, CPUID and
//! XGETBV, so the OS saving of YMM state is checked too), NEON on aarch64 (always present
//! there), the dot-product extension where the OS reports it, the portable set everywhere.

/// A kernel set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust, every CPU.
    Portable,
    /// x86 / x86-64 with AVX2 and F16C.
    Avx2,
    /// aarch64 Advanced SIMD.
    Neon,
    /// aarch64 Advanced SIMD with the dot-product extension (`sdot`; Armv8.2 optional, Armv8.4
    /// mandatory; the RK3588's Cortex-A76 and A55 have it).
    NeonDot,
}

impl Isa {
    /// Every kernel set, best last.
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Avx2, Isa::Neon, Isa::NeonDot];

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dot",
        }
    }

    /// Whether this CPU (and OS) runs it.
    pub fn available(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Avx2 => x86_avx2_available(),
            Isa::Neon => cfg!(target_arch = "aarch64"),
            Isa::NeonDot => aarch64_dotprod_available(),
        }
    }

    /// The best kernel set available here.
    pub fn detect() -> Isa {
        [Isa::Avx2, Isa::NeonDot, Isa::Neon]
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(Isa::Portable)
    }
}

/// With `std`, the OS's report (HWCAP on Linux); without, only what the build enables
/// (`-C target-feature=+dotprod`): reading the ID registers from user mode is not portable.
fn aarch64_dotprod_available() -> bool {
    #[cfg(all(target_arch = "aarch64", feature = "std"))]
    let on = std::arch::is_aarch64_feature_detected!("dotprod");
    #[cfg(not(all(target_arch = "aarch64", feature = "std")))]
    let on = cfg!(all(target_arch = "aarch64", target_feature = "dotprod"));
    on
}

#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), feature = "std"))]
fn x86_avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

/// Without std: CPUID leaf 1 (OSXSAVE, AVX, F16C) and leaf 7 (AVX2), and XCR0 bits 1–2 (the OS
/// saves XMM and YMM state). Only on targets with hardware floating point (soft-float
/// kernels such as `x86_64-unknown-none` must not touch vector registers).
#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), not(feature = "std")))]
fn x86_avx2_available() -> bool {
    #[cfg(target_feature = "sse2")]
    {
        #[cfg(target_arch = "x86")]
        use core::arch::x86::{__cpuid, __cpuid_count, _xgetbv};
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        // SAFETY: CPUID exists on every x86-64 CPU (and every x86 with SSE2); XGETBV is only
        // executed after CPUID says the OS enabled it (OSXSAVE).
        unsafe {
            if __cpuid(0).eax < 7 {
                return false;
            }
            let l1 = __cpuid(1);
            let (osxsave, avx, f16c) =
                (l1.ecx >> 27 & 1 == 1, l1.ecx >> 28 & 1 == 1, l1.ecx >> 29 & 1 == 1);
            if !(osxsave && avx && f16c) {
                return false;
            }
            let xcr0 = xgetbv0();
            let avx2 = __cpuid_count(7, 0).ebx >> 5 & 1 == 1;
            return avx2 && xcr0 & 0b110 == 0b110;

            #[target_feature(enable = "xsave")]
            unsafe fn xgetbv0() -> u64 {
                _xgetbv(0)
            }
        }
    }
    #[allow(unreachable_code)]
    false
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn x86_avx2_available() -> bool {
    false
}
