//! A stand-in for Rockchip's `librknnrt.so`, limited to the matmul API, so the RKNPU backend
//! runs end to end in CI without a board. `cargo build --release -p rknpu-sim` writes
//! `target/release/librknnrt.so`; point `NPU_RKNN_LIB` at it.
//!
//! It exports the C ABI of the project's rknpu brief §9 (declared once, in
//! `npu_runtime::rknpu::ffi`) and computes every `rknn_matmul_run` with
//! [`npu_runtime::exec::raw_dot`], the reference executors' own dot products, read from B in
//! its native layout. Being a reference, it is strict where the real library is known to be
//! strict; each rule and its source:
//!
//! | behaviour | source |
//! |---|---|
//! | types per chip (`RKNN_SIM_CHIP=rk3588` default, `rk3576`, `rk3566`): rk3588/rk3576 fp16×fp16→fp32 (1), int8×int8→int32 (2), int4×int4→int16 (10); rk3566 1 and 2; others "meet unsupported matmul dtype: %d" | MMH alignment comments per chip; CHANGELOG 1.6.0 "RK3588 adding int4*int4->int16"; message observed from 1.5.2 (brief §9) |
//! | `RKNN_SIM_VERSION=1.5.2`: types 1 and 2 only, K ≤ 4096, no IOMMU domains (bytes 24.. of the info ignored) | observed limits of librknnrt 1.5.2 (brief §9) |
//! | K a multiple of the K alignment ("matmul K must be align with 32!"), N of the N alignment ("matmul N must be align with %d!") | MMH; messages observed from 1.5.2 |
//! | K ≤ 8192 (rk3588), 4096 (rk3576), 10240 (rk3566) with native B ("matmul K must be less than or equal %d!") | MMH: K ≤ 10240, native B above 8192 (RK3588) / 4096 (RK3576) must be split into sub-blocks whose layout the header contradicts; the stand-in refuses instead of guessing |
//! | io_attr: B native `(N/nt, K/kt, nt, kt)`; A `[M, K]` or native `(K/a2, M, a2)`, a2 = 8 fp16 / 16 int8 / 32 int4; C `[M, N]` or native `(N/c2, M, c2)`, c2 = 4 (32-bit) / 8 (int16); C type FLOAT32 / INT32 / INT16 | MMH layout comments; 1.5.2 observed dims (brief §9) |
//! | int4 → int16: a sum outside int16 saturates | unknown on hardware: rocket-userspace claims saturation, Rockchip documents nothing (brief §3.1) |
//! | `rknn_matmul_set_core_mask`: single cores accepted; combined masks (3, 7, 0xffff) print "Not support core mask: %d, fallback to single core auto mode" and return -1; on single-core chips every call returns -1 | rknn-toolkit2 issues #7, #253 (message); MMH (-1 on single-core parts). Whether the real call returns an error after "fallback" is not recorded |
//! | `iommu_domain_id` 0..15; buffers count against their context's domain, 4 GiB each (pages rounded up); an allocation past it fails (NULL) | RT-DOC "each domain has 4GB of space"; vendor driver domain ids (brief §6) |
//! | `rknn_matmul_set_io_mem`: the buffer must be in the context's domain and at least the tensor's `size` | RT-DOC (context and its buffers in one domain); MMH size comments |
//! | `RKNN_SIM_DEVICE=0`: create fails with -3 ("failed to open rknpu module") | the real library's behaviour without a device node (brief §9) |
//!
//! What it cannot prove: the real library's numerics (fp16 summation order, int4 overflow),
//! its nibble order for A (only that A and B agree), speed, cache behaviour (`rknn_mem_sync`
//! is counted, not needed), real dma-buf fds (fds here are fake numbers), that a 2.x library
//! honours `iommu_domain_id` on a given kernel driver, and the exact return codes of errors
//! whose messages alone are recorded (such creates return `RKNN_ERR_PARAM_INVALID`).
//!
//! Counters per core (calls, bytes of A/B/C, MACs) and the peak number of cores running at
//! once are readable through `rknn_sim_core_stats` / `rknn_sim_peak_concurrency`, and written
//! as JSON to the file `RKNN_SIM_STATS` names each time the last context is destroyed.

// In dependency order: each module uses only modules above it.
mod dtype;
mod state;

mod introspect;

mod create;
mod mem;
mod run;

pub use create::{rknn_matmul_create, rknn_matmul_destroy, rknn_matmul_set_core_mask};
pub use introspect::{
    rknn_sim_core_stats, rknn_sim_domain_used, rknn_sim_peak_concurrency, rknn_sim_reset_stats,
};
pub use mem::{
    rknn_create_mem, rknn_create_mem2, rknn_create_mem_from_fd, rknn_create_mem_from_phys,
    rknn_destroy_mem, rknn_matmul_set_io_mem, rknn_mem_sync,
};
pub use run::rknn_matmul_run;
pub use state::{SimCoreStats, CORES, DOMAINS, DOMAIN_BYTES};
