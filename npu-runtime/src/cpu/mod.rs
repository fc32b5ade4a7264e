//! The fast CPU backend, [`CpuFast`]: SIMD kernels over the packed blob in its native layout,
//! bit-exact to the reference executors ([`crate::exec`]), optionally multithreaded.
//!
//! **What it computes.** Exactly [`crate::exec::matmul`]: the same activation preparation
//! (`prepare.rs`: the reference's own rotate / round / quantize, row by row), integer dot
//! products that are exact in any order (so they are vectorized freely along K), the fp16
//! pipeline in the reference's 16-lane f32 order (`exec` module docs: the order is defined so
//! that 256-bit, 512-bit and 4×128-bit units compute it natively), `(acc · s_a) · s_w`
//! partials summed over K segments in ascending order. int4 keeps the reference's i16
//! semantics (`driver.rs`), so results and overflow errors are identical.
//!
//! **How.** A matmul prepares its activation rows in blocks into the caller's scratch
//! ([`crate::backend::Backend::scratch_len`]; more scratch than one row lets prefill read
//! every weight block once per block of rows), then `driver.rs` cuts each block into work
//! items of whole N tiles and walks the packed shards in memory order, calling one kernel set
//! (`kernel.rs`: the interface; `portable.rs`, `x86_avx2.rs`, `aarch64_neon.rs`). Nothing is
//! unpacked, cached or allocated per call.
//!
//! **ISA dispatch.** [`Isa::detect`] (`isa.rs`) picks, at run time, the best kernel set this
//! CPU runs; [`CpuFast`] takes its kernel table once, at construction. Any [`Isa`] the CPU
//! supports can be forced ([`CpuFast::with_isa`]) — the tests run every one against the
//! reference. Layouts whose K runs are not whole SIMD chunks (none of the shipped targets) go
//! to the reference executor.
//!
//! **Threads** (`std` only): `CpuFast::with_threads` starts a persistent pool once
//! (`pool.rs`); the threads claim work items from a shared counter (so a thread the OS did not
//! schedule in time costs nothing on a busy machine), and every output value is computed by
//! exactly one thread with the same operations: the result does not depend on the thread
//! count (tested). Without `std` it is single-threaded.

#[cfg(target_arch = "aarch64")]
mod aarch64_neon;
mod driver;
mod isa;
mod kernel;
#[cfg(feature = "std")]
mod pool;
mod portable;
mod prepare;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod x86_avx2;

pub use isa::Isa;
pub use kernel::{Walk, ACT_CHUNK, F16_CHUNK};
pub use prepare::{scratch_len_rows, MAX_BLOCK_ROWS};

use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::exec;
use crate::format::{TensorDesc, TensorKind};
use driver::{Block, Out};
use kernel::Kernels;

/// The kernel table of `isa`, if this CPU runs it: the only way a table is handed out.
fn kernels(isa: Isa) -> Option<&'static Kernels> {
    if !isa.available() {
        return None;
    }
    match isa {
        Isa::Portable => Some(&portable::KERNELS),
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Isa::Avx2 => Some(&x86_avx2::KERNELS),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => Some(&aarch64_neon::NEON),
        #[cfg(target_arch = "aarch64")]
        Isa::NeonDot => Some(&aarch64_neon::NEON_DOT),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The fast CPU backend (see the module docs).
pub struct CpuFast {
    isa: Isa,
    ks: &'static Kernels,
    #[cfg(feature = "std")]
    pool: Option<pool::Pool>,
}

impl core::fmt::Debug for CpuFast {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuFast").field("isa", &self.isa).field("threads", &self.threads()).finish()
    }
}

impl Default for CpuFast {
    fn default() -> Self {
        CpuFast::new()
    }
}

impl CpuFast {
    /// Single-threaded, with the best kernels this CPU runs ([`Isa::detect`]).
    pub fn new() -> CpuFast {
        let isa = Isa::detect();
        CpuFast {
            isa,
            ks: kernels(isa).unwrap_or(&portable::KERNELS),
            #[cfg(feature = "std")]
            pool: None,
        }
    }

    /// Single-threaded with the given kernel set; an error if this CPU cannot run it.
    pub fn with_isa(isa: Isa) -> Result<CpuFast, Error> {
        let ks = kernels(isa).ok_or(Error::Backend("instruction set not available on this CPU"))?;
        let mut b = CpuFast::new();
        (b.isa, b.ks) = (isa, ks);
        Ok(b)
    }

    /// The same backend running on `threads` threads in all (the caller's included), from a
    /// pool started now and kept for the backend's life. `threads ≤ 1` means no pool.
    #[cfg(feature = "std")]
    pub fn with_threads(mut self, threads: usize) -> std::io::Result<CpuFast> {
        self.pool = if threads > 1 { Some(pool::Pool::new(threads)?) } else { None };
        Ok(self)
    }

    /// The kernel set in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Threads a matmul may use.
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(p) = &self.pool {
            return p.threads();
        }
        1
    }

    /// Runs `job` on the pool's threads (each call shares out the job's work items), or once
    /// on this thread.
    fn run(&self, parallel: bool, job: &(dyn Fn() + Sync)) -> Result<(), Error> {
        #[cfg(feature = "std")]
        if let (true, Some(p)) = (parallel, &self.pool) {
            return if p.run(job) {
                Ok(())
            } else {
                Err(Error::Backend("a matmul worker thread panicked"))
            };
        }
        let _ = parallel;
        job();
        Ok(())
    }
}

/// The lengths a matmul of `m` rows through `desc` needs.
fn check_lengths(
    desc: &TensorDesc<'_>,
    x: &[f32],
    m: usize,
    y: &[f32],
    scratch: &[f32],
) -> Result<(), Error> {
    let (k, n) = (desc.geom.k as usize, desc.geom.n as usize);
    if x.len() != m * k {
        return Err(Error::Length { what: "x", need: m * k, got: x.len() });
    }
    if y.len() != m * n {
        return Err(Error::Length { what: "y", need: m * n, got: y.len() });
    }
    let need = scratch_len_rows(desc, 1);
    if scratch.len() < need {
        return Err(Error::Length { what: "scratch", need, got: scratch.len() });
    }
    Ok(())
}

impl Backend for CpuFast {
    fn name(&self) -> &'static str {
        self.ks.name
    }

    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        scratch_len_rows(w.desc(), 1)
    }

    /// Block by block of rows: prepare the rows, run the block's work items (on the pool when
    /// it is big enough), stop at the reference's first error.
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        let (desc, blob) = (w.desc(), w.blob());
        let p = match (desc.kind, desc.pipeline) {
            (TensorKind::Matmul, Some(p)) => p,
            _ => return Err(Error::WrongKind),
        };
        if !driver::simd_friendly(desc, p) {
            return exec::matmul(desc, blob, x, m, y, scratch);
        }
        check_lengths(desc, x, m, y, scratch)?;
        let block_rows = prepare::block_rows(desc, m, scratch.len());
        let k = desc.geom.k as usize;
        let y = Out::new(y);
        let mut row0 = 0;
        while row0 < m {
            let rows = block_rows.min(m - row0);
            let x = &x[row0 * k..(row0 + rows) * k];
            let prep = prepare::prepare(self.ks, desc, p, x, rows, scratch);
            let blk = Block::new(self.ks, desc, blob, p, prep, row0, y);
            self.run(blk.parallel(), &|| blk.run())?;
            blk.result()?;
            row0 += rows;
        }
        Ok(())
    }
}
