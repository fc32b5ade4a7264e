//! Picking a backend at run time (`--backend cpu|rknpu|auto`), for applications and the CLI.
//!
//! - `cpu`: [`CpuFast`] (SIMD kernels, bit-identical to [`CpuReference`]); if it cannot start
//!   (no thread could be spawned), the reference executor, with the reason kept.
//! - `rknpu`: [`crate::rknpu::RknpuBackend`] on librknnrt (`NPU_RKNN_LIB` or `librknnrt.so`);
//!   any failure to load or set up is the error. Needs the `rknpu` feature.
//! - `auto`: `rknpu` when the library loads and a probe context can be created (the library
//!   finds its device), else `cpu`, with the reason kept in [`Selection::fallback`].
//!
//! This module sits above the backends it chooses between; nothing below it depends on it.

use crate::backend::{Backend, CpuReference, PackedWeight};
use crate::cpu::CpuFast;
use crate::error::Error;
use crate::format::PackedModel;
use core::fmt;

/// The `--backend` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The CPU kernels.
    Cpu,
    /// The NPU through librknnrt; failing to start it is an error.
    Rknpu,
    /// The NPU when librknnrt and its device are usable, else the CPU.
    Auto,
}

impl Choice {
    /// Every choice, in the order help texts list them.
    pub const ALL: [Choice; 3] = [Choice::Cpu, Choice::Rknpu, Choice::Auto];

    /// The command-line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Choice::Cpu => "cpu",
            Choice::Rknpu => "rknpu",
            Choice::Auto => "auto",
        }
    }
}

impl core::str::FromStr for Choice {
    type Err = SelectError;
    fn from_str(s: &str) -> Result<Choice, SelectError> {
        Choice::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| SelectError::UnknownChoice(s.to_string()))
    }
}

/// Why no backend could be set up.
#[derive(Debug)]
pub enum SelectError {
    /// Not one of `cpu`, `rknpu`, `auto`.
    UnknownChoice(String),
    /// `rknpu` asked of a runtime built without the `rknpu` feature.
    RknpuNotBuilt,
    /// librknnrt failed to load or to set the model up.
    #[cfg(feature = "rknpu")]
    Rknpu(crate::rknpu::RknpuError),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::UnknownChoice(s) => {
                write!(f, "backend `{s}`: not one of cpu, rknpu, auto")
            }
            SelectError::RknpuNotBuilt => {
                f.write_str("backend `rknpu`: this binary was built without the `rknpu` feature")
            }
            #[cfg(feature = "rknpu")]
            SelectError::Rknpu(e) => write!(f, "backend `rknpu`: {e}"),
        }
    }
}

impl std::error::Error for SelectError {}

/// A backend chosen at run time.
pub enum Selected {
    /// The reference executors.
    Reference(CpuReference),
    /// The fast CPU kernels.
    Fast(CpuFast),
    /// librknnrt.
    #[cfg(feature = "rknpu")]
    Rknpu(Box<crate::rknpu::RknpuBackend>),
}

/// What [`select`] set up.
pub struct Selection {
    /// The backend.
    pub backend: Selected,
    /// Why `auto` (or a `cpu` that could not start its threads) fell back, for a notice.
    pub fallback: Option<String>,
}

/// [`CpuFast`] on `threads` threads (at least 1), or the reference executor with the reason
/// when its threads cannot start. `cpu` is the kernel set; `None` picks the best this CPU has.
pub fn cpu(cpu: Option<CpuFast>, threads: usize) -> Selection {
    let fast = cpu.unwrap_or_default();
    match fast.with_threads(threads.max(1)) {
        Ok(b) => Selection { backend: Selected::Fast(b), fallback: None },
        Err(e) => Selection {
            backend: Selected::Reference(CpuReference),
            fallback: Some(format!("fast CPU backend unavailable ({e}); using the reference")),
        },
    }
}

/// The backend `choice` asks for, set up for `model`; `cpu` makes the CPU one when it is
/// chosen or fallen back to (e.g. `|| select::cpu(None, threads)`).
pub fn select(
    choice: Choice,
    model: &PackedModel<'_>,
    cpu: impl FnOnce() -> Selection,
) -> Result<Selection, SelectError> {
    match choice {
        Choice::Cpu => Ok(cpu()),
        Choice::Rknpu => rknpu(model, false),
        Choice::Auto => rknpu(model, true).or_else(|e| {
            let mut s = cpu();
            let notice = format!("--backend auto: NPU not usable ({e}); running on the CPU");
            s.fallback = Some(match s.fallback {
                Some(more) => format!("{notice}; {more}"),
                None => notice,
            });
            Ok(s)
        }),
    }
}

/// librknnrt set up for `model`; `probe` first checks that the library finds its device.
#[cfg(feature = "rknpu")]
fn rknpu(model: &PackedModel<'_>, probe: bool) -> Result<Selection, SelectError> {
    use crate::rknpu::{Rknn, RknpuBackend};
    let lib = Rknn::load().map_err(SelectError::Rknpu)?;
    if probe {
        lib.probe().map_err(SelectError::Rknpu)?;
    }
    let b =
        RknpuBackend::with_library(std::sync::Arc::new(lib), model).map_err(SelectError::Rknpu)?;
    Ok(Selection { backend: Selected::Rknpu(Box::new(b)), fallback: None })
}

#[cfg(not(feature = "rknpu"))]
fn rknpu(_: &PackedModel<'_>, _probe: bool) -> Result<Selection, SelectError> {
    Err(SelectError::RknpuNotBuilt)
}

impl Selected {
    /// Backend name and thread count (or NPU runs per core), for timing lines.
    pub fn describe(&self) -> String {
        match self {
            Selected::Reference(b) => b.name().to_string(),
            Selected::Fast(b) => format!("{} x{}", b.name(), b.threads()),
            #[cfg(feature = "rknpu")]
            Selected::Rknpu(b) => {
                let c = b.calls_per_core();
                format!("rknpu (runs per core {}/{}/{})", c[0], c[1], c[2])
            }
        }
    }

    /// The full NPU failure behind an [`Error::Npu`], if any.
    pub fn failure(&self) -> Option<String> {
        match self {
            #[cfg(feature = "rknpu")]
            Selected::Rknpu(b) => b.last_failure().map(|e| e.to_string()),
            _ => None,
        }
    }
}

impl Backend for Selected {
    fn name(&self) -> &'static str {
        match self {
            Selected::Reference(b) => b.name(),
            Selected::Fast(b) => b.name(),
            #[cfg(feature = "rknpu")]
            Selected::Rknpu(b) => b.name(),
        }
    }
    fn scratch_len(&self, w: &PackedWeight<'_>) -> usize {
        match self {
            Selected::Reference(b) => b.scratch_len(w),
            Selected::Fast(b) => b.scratch_len(w),
            #[cfg(feature = "rknpu")]
            Selected::Rknpu(b) => b.scratch_len(w),
        }
    }
    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> Result<(), Error> {
        match self {
            Selected::Reference(b) => b.matmul(w, x, m, y, scratch),
            Selected::Fast(b) => b.matmul(w, x, m, y, scratch),
            #[cfg(feature = "rknpu")]
            Selected::Rknpu(b) => b.matmul(w, x, m, y, scratch),
        }
    }
}
