//! The RKNPU2 path: matmuls on a Rockchip NPU through librknnrt's matmul API.
//!
//! - [`ffi`]: the library's C ABI, declared by hand with size/offset asserts (always built;
//!   the `rknpu-sim` stand-in implements the same declarations).
//! - [`plan`]: the NPU memory plan (buffers, IOMMU domains) of a packed model, no_std; the
//!   build script's `NPU_BUFFERS` const and the backend's allocations both come from it.
//! - `library`, `setup` and `backend` (feature `rknpu`, needs `std`): librknnrt loaded at run
//!   time; a model's contexts and buffers set up on it; `RknpuBackend`, a
//!   [`crate::backend::Backend`].
//!
//! Call sequence, memory plan and what the stand-in can and cannot prove:
//! `docs/rknpu-backend.md`.

pub mod ffi;
pub mod plan;

#[cfg(feature = "rknpu")]
mod backend;
#[cfg(feature = "rknpu")]
mod library;
#[cfg(feature = "rknpu")]
mod setup;

#[cfg(feature = "rknpu")]
pub use backend::{RknpuBackend, SetupStats};
#[cfg(feature = "rknpu")]
pub use library::{Rknn, LIB_ENV, LIB_NAME};

/// Why the RKNPU backend cannot start or run: each names the call, its return code and the
/// tensor, or what is missing and how to fix it.
#[cfg(feature = "rknpu")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RknpuError {
    /// `dlopen` failed.
    LibraryNotFound {
        /// Where the loader looked.
        looked: String,
        /// The loader's message.
        reason: String,
    },
    /// The library lacks a required entry point (not a librknnrt with the matmul API).
    MissingSymbol {
        /// Library file.
        library: String,
        /// Missing function.
        symbol: String,
    },
    /// A library call failed.
    Call {
        /// The function.
        call: &'static str,
        /// Its return code.
        code: i32,
        /// The tensor, segment, core and bucket it was for.
        tensor: String,
        /// What the code usually means here.
        hint: &'static str,
    },
    /// The library's io attributes disagree with the packed layout.
    Layout {
        /// The tensor, segment, core and bucket.
        tensor: String,
        /// The disagreement.
        why: String,
    },
    /// The model was not packed for an RKNPU target.
    NotRknpuModel {
        /// Its target.
        target: &'static str,
    },
    /// No memory plan fits.
    Plan(String),
    /// `RLIMIT_NOFILE` is below what the model's NPU buffers need.
    FileLimit {
        /// Descriptors needed (buffers + margin).
        need: u64,
        /// Current soft limit.
        soft: u64,
        /// Hard limit.
        hard: u64,
    },
}

#[cfg(feature = "rknpu")]
impl core::fmt::Display for RknpuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RknpuError::LibraryNotFound { looked, reason } => write!(
                f,
                "rknpu: cannot load librknnrt: looked for {looked}: {reason}"
            ),
            RknpuError::MissingSymbol { library, symbol } => {
                write!(f, "rknpu: {library} has no `{symbol}`: not a librknnrt with the matmul API (SDK >= 1.5.0)")
            }
            RknpuError::Call { call, code, tensor, hint } => write!(
                f,
                "rknpu: {call} returned {code} ({}) for {tensor}: {hint}",
                ffi::ret::name(*code)
            ),
            RknpuError::Layout { tensor, why } => write!(f, "rknpu: {tensor}: {why}"),
            RknpuError::NotRknpuModel { target } => write!(
                f,
                "rknpu: the model is packed for `{target}`; the NPU backend needs an RKNPU target (rk3588, rk3576, rk3566, rk3568)"
            ),
            RknpuError::Plan(why) => write!(f, "rknpu: memory plan: {why}"),
            RknpuError::FileLimit { need, soft, hard } => write!(
                f,
                "rknpu: the model needs {need} open files (one dma-buf per NPU buffer) but RLIMIT_NOFILE is {soft} (hard {hard}): run `ulimit -n {need}` (or raise the hard limit in /etc/security/limits.conf)"
            ),
        }
    }
}

#[cfg(feature = "rknpu")]
impl std::error::Error for RknpuError {}
