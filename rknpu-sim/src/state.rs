//! The stand-in's global state (contexts, buffers, domain use, counters) under one lock, the
//! in-flight run counters, the log line format and the chip and library version the
//! environment selects.

use npu_runtime::format::{Layout, Pipeline};
use npu_runtime::rknpu::ffi::MatmulIoAttr;
use npu_runtime::target::TargetId;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, MutexGuard};

/// Bytes of one IOMMU domain.
pub const DOMAIN_BYTES: u64 = 4 << 30;
/// Domain ids accepted.
pub const DOMAINS: usize = 16;
/// Cores counted.
pub const CORES: usize = 3;

/// Per-core counters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCoreStats {
    /// `rknn_matmul_run` calls that ran on this core.
    pub calls: u64,
    /// Bytes of A read.
    pub a_bytes: u64,
    /// Bytes of B read.
    pub b_bytes: u64,
    /// Bytes of C written.
    pub c_bytes: u64,
    /// Multiply-accumulates.
    pub macs: u64,
}

/// One matmul context: its shape and types, domain, core and bound A/B/C buffers.
pub(crate) struct Ctx {
    pub(crate) pipeline: Pipeline,
    pub(crate) layout: Layout,
    pub(crate) m: u32,
    pub(crate) k: u32,
    pub(crate) n: u32,
    pub(crate) ac_native: bool,
    pub(crate) domain: usize,
    pub(crate) cores: u32,
    /// Core the runs go to (AUTO = core 0).
    pub(crate) core: u32,
    pub(crate) io: MatmulIoAttr,
    pub(crate) bound: [Option<usize>; 3],
}

/// One buffer: its data and size, its domain, the bytes counted against that domain, and the
/// bytes of the stand-in's own mapping (0 for a caller's memory).
pub(crate) struct MemRec {
    pub(crate) data: *mut u8,
    pub(crate) size: u32,
    pub(crate) domain: usize,
    pub(crate) accounted: u64,
    pub(crate) mapped: usize,
}

/// Everything the exported functions share; buffers are keyed by their `TensorMem` address.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) next_ctx: u64,
    pub(crate) next_fd: i32,
    pub(crate) ctxs: BTreeMap<u64, Ctx>,
    pub(crate) mems: BTreeMap<usize, MemRec>,
    pub(crate) domain_used: [u64; DOMAINS],
    pub(crate) stats: [SimCoreStats; CORES],
    pub(crate) syncs: u64,
}

// SAFETY: the raw pointers in `MemRec` are mappings owned by the state, used under the lock
// (or, during a run, while the caller guarantees the buffers stay alive).
unsafe impl Send for State {}

/// The state, behind the one lock every exported function takes.
static STATE: Mutex<Option<State>> = Mutex::new(None);
/// Runs in flight now, and the most at once.
pub(crate) static RUNNING: AtomicU32 = AtomicU32::new(0);
pub(crate) static PEAK: AtomicU32 = AtomicU32::new(0);

/// The locked state, created on first use (a poisoned lock is taken over as it is).
pub(crate) fn state() -> MutexGuard<'static, Option<State>> {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(State { next_ctx: 1, next_fd: 1000, ..State::default() });
    }
    g
}

/// One error line in the real library's format.
pub(crate) fn log(msg: &str) {
    eprintln!("E RKNN: {msg}");
}

/// The chip `RKNN_SIM_CHIP` selects (rk3588 by default; rk3568 counts as rk3566) and its name.
pub(crate) fn chip() -> (TargetId, &'static str) {
    match std::env::var("RKNN_SIM_CHIP").ok().as_deref() {
        Some("rk3576") => (TargetId::Rk3576, "rk3576"),
        Some("rk3566") | Some("rk3568") => (TargetId::Rk3566, "rk3566"),
        _ => (TargetId::Rk3588, "rk3588"),
    }
}

/// `RKNN_SIM_VERSION=1.*`: the limits of librknnrt 1.5.2.
pub(crate) fn v1() -> bool {
    std::env::var("RKNN_SIM_VERSION").is_ok_and(|v| v.starts_with("1."))
}
