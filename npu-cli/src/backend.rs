//! Which backend runs a session's matmuls: `--backend cpu|rknpu|auto`, shared by `run`,
//! `logits` and `eval`.
//!
//! - `cpu`: [`CpuFast`] (SIMD kernels, bit-identical to [`CpuReference`]) on `threads` threads.
//!   Environment overrides, for checks and measurements: `NPU_REFERENCE_BACKEND=1` runs the
//!   reference executor itself, `NPU_ISA=portable|avx2|neon|neon-dot` forces a kernel set. If
//!   the fast backend cannot start, the reason is printed and the reference runs.
//! - `rknpu`: [`RknpuBackend`] on librknnrt (`NPU_RKNN_LIB` or `librknnrt.so`); any failure to
//!   load or set up is the command's error.
//! - `auto`: `rknpu` when the library loads and a probe context can be created (the library
//!   finds its device), else `cpu` with a one-line notice.

use npu_runtime::backend::{Backend, CpuReference, PackedWeight};
use npu_runtime::cpu::{CpuFast, Isa};
use npu_runtime::format::PackedModel;
use npu_runtime::rknpu::{Rknn, RknpuBackend};
use std::sync::Arc;

/// The `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The CPU kernels.
    Cpu,
    /// The NPU through librknnrt (fails when it cannot start).
    Rknpu,
    /// The NPU when librknnrt and its device are usable, else the CPU.
    Auto,
}

/// A backend chosen at run time.
pub enum CliBackend {
    /// The reference executors.
    Reference(CpuReference),
    /// The fast CPU kernels.
    Fast(CpuFast),
    /// librknnrt.
    Rknpu(Box<RknpuBackend>),
}

/// The CPU backend (see the module docs).
pub fn cpu(threads: Option<usize>) -> CliBackend {
    if std::env::var_os("NPU_REFERENCE_BACKEND").is_some_and(|v| v == "1") {
        return CliBackend::Reference(CpuReference);
    }
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let fast = match std::env::var("NPU_ISA").ok().as_deref() {
        None | Some("") => Ok(CpuFast::new()),
        Some(name) => match Isa::ALL.into_iter().find(|i| i.name() == name) {
            Some(isa) => CpuFast::with_isa(isa).map_err(|e| e.to_string()),
            None => Err(format!("NPU_ISA={name}: not one of portable, avx2, neon, neon-dot")),
        },
    };
    match fast.and_then(|b| b.with_threads(threads).map_err(|e| e.to_string())) {
        Ok(b) => CliBackend::Fast(b),
        Err(e) => {
            eprintln!("npu: fast CPU backend unavailable ({e}); using the reference executor");
            CliBackend::Reference(CpuReference)
        }
    }
}

/// The backend `choice` asks for, set up for `model`.
pub fn select(
    choice: BackendChoice,
    model: &PackedModel<'_>,
    threads: Option<usize>,
) -> Result<CliBackend, Box<dyn std::error::Error>> {
    match choice {
        BackendChoice::Cpu => Ok(cpu(threads)),
        BackendChoice::Rknpu => Ok(rknpu(Arc::new(Rknn::load()?), model)?),
        BackendChoice::Auto => {
            let lib = Rknn::load().and_then(|l| l.probe().map(|()| l));
            match lib.and_then(|l| rknpu(Arc::new(l), model)) {
                Ok(b) => Ok(b),
                Err(e) => {
                    eprintln!("npu: --backend auto: NPU not usable ({e}); running on the CPU");
                    Ok(cpu(threads))
                }
            }
        }
    }
}

fn rknpu(
    lib: Arc<Rknn>,
    model: &PackedModel<'_>,
) -> Result<CliBackend, npu_runtime::rknpu::RknpuError> {
    let b = RknpuBackend::with_library(lib, model)?;
    let s = b.stats();
    eprintln!(
        "npu: rknpu ({}): {} contexts, {} buffers in {} IOMMU domain(s); B {:.1} MB filled in {:.1} ms ({:.1} ms per 100 MB), setup {:.2} s",
        b.library().origin,
        s.contexts,
        s.buffers,
        s.domains,
        s.b_bytes as f64 / 1e6,
        s.fill_secs * 1e3,
        s.fill_secs * 1e3 / (s.b_bytes as f64 / 1e8).max(1e-9),
        s.setup_secs
    );
    Ok(CliBackend::Rknpu(Box::new(b)))
}

impl CliBackend {
    /// Backend name and thread count, for the timing lines.
    pub fn describe(&self) -> String {
        match self {
            CliBackend::Reference(b) => b.name().to_owned(),
            CliBackend::Fast(b) => format!("{} x{}", b.name(), b.threads()),
            CliBackend::Rknpu(b) => {
                let c = b.calls_per_core();
                format!("rknpu (runs per core {}/{}/{})", c[0], c[1], c[2])
            }
        }
    }

    /// The full NPU failure behind an [`npu_runtime::Error::Npu`], if any.
    pub fn failure(&self) -> Option<String> {
        match self {
            CliBackend::Rknpu(b) => b.last_failure().map(|e| e.to_string()),
            _ => None,
        }
    }
}

impl Backend for CliBackend {
    fn name(&self) -> &'static str {
        match self {
            CliBackend::Reference(b) => b.name(),
            CliBackend::Fast(b) => b.name(),
            CliBackend::Rknpu(b) => b.name(),
        }
    }
    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        match self {
            CliBackend::Reference(b) => b.scratch_len(w),
            CliBackend::Fast(b) => b.scratch_len(w),
            CliBackend::Rknpu(b) => b.scratch_len(w),
        }
    }
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), npu_runtime::Error> {
        match self {
            CliBackend::Reference(b) => b.matmul(w, x, m, y, scratch),
            CliBackend::Fast(b) => b.matmul(w, x, m, y, scratch),
            CliBackend::Rknpu(b) => b.matmul(w, x, m, y, scratch),
        }
    }
}
