//! Which backend runs a session's matmuls: `--backend cpu|rknpu|auto`, shared by `run`,
//! `logits` and `eval`, on [`npu_runtime::select`] with the CLI's own overrides.
//!
//! - `cpu`: [`CpuFast`] (SIMD kernels, bit-identical to [`CpuReference`]) on `threads` threads.
//!   Environment overrides, for checks and measurements: `NPU_REFERENCE_BACKEND=1` runs the
//!   reference executor itself, `NPU_ISA=portable|avx2|neon|neon-dot` forces a kernel set. If
//!   the fast backend cannot start, the reason is printed and the reference runs.
//! - `rknpu`: [`npu_runtime::rknpu::RknpuBackend`] on librknnrt (`NPU_RKNN_LIB` or `librknnrt.so`); any failure to
//!   load or set up is the command's error.
//! - `auto`: `rknpu` when the library loads and a probe context can be created (the library
//!   finds its device), else `cpu` with a one-line notice.

use npu_runtime::backend::CpuReference;
use npu_runtime::cpu::{CpuFast, Isa};
use npu_runtime::format::PackedModel;
use npu_runtime::select::{self, Choice, Selected, Selection};

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

impl From<BackendChoice> for Choice {
    fn from(c: BackendChoice) -> Choice {
        match c {
            BackendChoice::Cpu => Choice::Cpu,
            BackendChoice::Rknpu => Choice::Rknpu,
            BackendChoice::Auto => Choice::Auto,
        }
    }
}

/// The CPU backend (see the module docs).
pub fn cpu(threads: Option<usize>) -> Selection {
    if std::env::var_os("NPU_REFERENCE_BACKEND").is_some_and(|v| v == "1") {
        return Selection { backend: Selected::Reference(CpuReference), fallback: None };
    }
    let threads = crate::threads(threads);
    let fast = match std::env::var("NPU_ISA").ok().as_deref() {
        None | Some("") => return select::cpu(None, threads),
        Some(name) => match Isa::ALL.into_iter().find(|i| i.name() == name) {
            Some(isa) => CpuFast::with_isa(isa).map_err(|e| e.to_string()),
            None => Err(format!("NPU_ISA={name}: not one of portable, avx2, neon, neon-dot")),
        },
    };
    match fast {
        Ok(fast) => select::cpu(Some(fast), threads),
        Err(e) => Selection {
            backend: Selected::Reference(CpuReference),
            fallback: Some(format!("{e}; using the reference executor")),
        },
    }
}

/// The backend `choice` asks for, set up for `model`; fallbacks and the NPU's setup figures
/// are printed on stderr.
pub fn select(
    choice: BackendChoice,
    model: &PackedModel<'_>,
    threads: Option<usize>,
) -> Result<Selected, select::SelectError> {
    let chosen = select::select(choice.into(), model, || cpu(threads))?;
    if let Some(notice) = &chosen.fallback {
        eprintln!("npu: {notice}");
    }
    if let Selected::Rknpu(b) = &chosen.backend {
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
    }
    Ok(chosen.backend)
}
