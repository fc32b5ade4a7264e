//! Stand-in only: the test hooks `rknn_sim_*` reading and clearing the counters, and the
//! counters as JSON.

use crate::state::{chip, state, SimCoreStats, State, CORES, PEAK};
use npu_runtime::rknpu::ffi::ret;
use std::ffi::c_int;
use std::sync::atomic::Ordering;

/// The counters, the chip and the peak concurrency as one JSON line.
pub(crate) fn stats_json(s: &State) -> String {
    let cores: Vec<String> = s
        .stats
        .iter()
        .map(|c| {
            format!(
                "{{\"calls\":{},\"a_bytes\":{},\"b_bytes\":{},\"c_bytes\":{},\"macs\":{}}}",
                c.calls, c.a_bytes, c.b_bytes, c.c_bytes, c.macs
            )
        })
        .collect();
    format!(
        "{{\"chip\":\"{}\",\"cores\":[{}],\"peak_concurrent_cores\":{},\"mem_syncs\":{}}}\n",
        chip().1,
        cores.join(","),
        PEAK.load(Ordering::SeqCst),
        s.syncs
    )
}

/// Stand-in only: the counters of `core` (0..3) into `out`; -5 for a bad argument.
///
/// # Safety
/// `out` points at a `SimCoreStats` (or is null).
#[no_mangle]
pub unsafe extern "C" fn rknn_sim_core_stats(core: u32, out: *mut SimCoreStats) -> c_int {
    if out.is_null() || core as usize >= CORES {
        return ret::PARAM_INVALID;
    }
    let g = state();
    let s = g.as_ref().expect("initialised by state()");
    // SAFETY: checked non-null.
    unsafe { *out = s.stats[core as usize] };
    ret::SUCC
}

/// Stand-in only: the most runs that were in flight at once (≥ 2 shows cores overlapped).
#[no_mangle]
pub extern "C" fn rknn_sim_peak_concurrency() -> u32 {
    PEAK.load(Ordering::SeqCst)
}

/// Stand-in only: bytes allocated in an IOMMU domain (u64::MAX for a bad id).
#[no_mangle]
pub extern "C" fn rknn_sim_domain_used(domain: u32) -> u64 {
    let g = state();
    let s = g.as_ref().expect("initialised by state()");
    s.domain_used.get(domain as usize).copied().unwrap_or(u64::MAX)
}

/// Stand-in only: clears the counters.
#[no_mangle]
pub extern "C" fn rknn_sim_reset_stats() {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    s.stats = [SimCoreStats::default(); CORES];
    s.syncs = 0;
    PEAK.store(0, Ordering::SeqCst);
}
