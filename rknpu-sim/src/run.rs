//! `rknn_matmul_run`: the job copied out of the state under the lock, counted on its core,
//! then computed outside the lock with the reference executors' dot products.

use crate::dtype::{a_c2, c_c2};
use crate::state::{log, state, CORES, PEAK, RUNNING};
use npu_runtime::exec::{raw_dot, RawSum};
use npu_runtime::format::{Layout, Pipeline};
use npu_runtime::rknpu::ffi::*;
use std::ffi::c_int;
use std::sync::atomic::Ordering;

/// Everything a run needs, copied out of the state so the lock is not held while computing.
struct Job {
    p: Pipeline,
    layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    ac_native: bool,
    core: usize,
    a: *const u8,
    b: *const u8,
    c: *mut u8,
}

/// `rknn_matmul_run`: C = A · B on the context's core, with the reference executors' dot
/// products. Blocking.
#[no_mangle]
pub extern "C" fn rknn_matmul_run(ctx: RknnMatmulCtx) -> c_int {
    let job = match start_job(ctx) {
        Ok(job) => job,
        Err(code) => return code,
    };
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    // SAFETY: the buffers stay alive while the caller's run is in flight (the API contract:
    // buffers are destroyed only after the runs that use them returned).
    unsafe { compute(&job) };
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    ret::SUCC
}

/// Under the lock: the context's job, with A, B and C bound, counted on its core.
fn start_job(ctx: RknnMatmulCtx) -> Result<Job, c_int> {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get(&ctx) else {
        log("rknn_matmul_run: invalid context");
        return Err(ret::CTX_INVALID);
    };
    let ptr = |i: usize| c.bound[i].and_then(|m| s.mems.get(&m)).map(|r| r.data);
    let (Some(a), Some(b), Some(cm)) = (ptr(0), ptr(1), ptr(2)) else {
        log("rknn_matmul_run: A, B and C must be set with rknn_matmul_set_io_mem first");
        return Err(ret::FAIL);
    };
    let job = Job {
        p: c.pipeline,
        layout: c.layout,
        m: c.m as usize,
        k: c.k as usize,
        n: c.n as usize,
        ac_native: c.ac_native,
        core: c.core as usize,
        a,
        b,
        c: cm,
    };
    let st = &mut s.stats[job.core.min(CORES - 1)];
    st.calls += 1;
    st.a_bytes += c.io.a.size as u64;
    st.b_bytes += c.io.b.size as u64;
    st.c_bytes += c.io.c.size as u64;
    st.macs += (job.m * job.k * job.n) as u64;
    Ok(job)
}

/// C = A · B, row by row of A.
///
/// # Safety
/// `j.a`, `j.b` and `j.c` point at live buffers of at least A's, B's and C's sizes.
unsafe fn compute(j: &Job) {
    let bits = j.p.elem().bits();
    let b = unsafe { std::slice::from_raw_parts(j.b, j.layout.byte_len(j.k, j.n)) };
    let a_all = unsafe { std::slice::from_raw_parts(j.a, j.m * j.k * bits / 8) };
    let c_bytes = j.p.acc_bits() as usize / 8;
    let c_all = unsafe { std::slice::from_raw_parts_mut(j.c, j.m * j.n * c_bytes) };
    let mut row = vec![0f32; j.k];
    for m in 0..j.m {
        read_a_row(j, a_all, m, &mut row);
        write_c_row(j, b, &row, m, c_all);
    }
}

/// Row `m` of A as exact values (`row` holds K).
fn read_a_row(j: &Job, a_all: &[u8], m: usize, row: &mut [f32]) {
    for (k, v) in row.iter_mut().enumerate() {
        // Element (m, k) of A: row-major, or native (K/c2, M, c2).
        let idx = if j.ac_native {
            let c2 = a_c2(j.p) as usize;
            ((k / c2) * j.m + m) * c2 + k % c2
        } else {
            m * j.k + k
        };
        *v = match j.p {
            Pipeline::F16F16F32 => {
                half::f16::from_le_bytes([a_all[2 * idx], a_all[2 * idx + 1]]).to_f32()
            }
            Pipeline::I8I8I32 => a_all[idx] as i8 as f32,
            Pipeline::I4I4I16 => {
                let byte = a_all[idx / 2];
                let nib = if idx % 2 == 0 { byte << 4 } else { byte & 0xf0 };
                ((nib as i8) >> 4) as f32
            }
        };
    }
}

/// Row `m` of C: A's `row` dotted with each column of B, little-endian in C's layout.
fn write_c_row(j: &Job, b: &[u8], row: &[f32], m: usize, c_all: &mut [u8]) {
    let c_bytes = j.p.acc_bits() as usize / 8;
    for n in 0..j.n {
        let out = if j.ac_native {
            let c2 = c_c2(j.p) as usize;
            ((n / c2) * j.m + m) * c2 + n % c2
        } else {
            m * j.n + n
        };
        let at = &mut c_all[out * c_bytes..(out + 1) * c_bytes];
        match raw_dot(j.p, j.layout, b, row, n, j.n) {
            Some(RawSum::F32(v)) => at.copy_from_slice(&v.to_le_bytes()),
            Some(RawSum::I32(v)) => at.copy_from_slice(&v.to_le_bytes()),
            Some(RawSum::I16(v)) => at.copy_from_slice(&v.to_le_bytes()),
            None => {
                // Out of the accumulator's range: int16 saturates (see the crate docs);
                // int32 cannot overflow at K ≤ 10240 with int8 operands.
                let wide = wide_i4_sum(j, b, row, n);
                let v = wide.clamp(i16::MIN as i64, i16::MAX as i64) as i16;
                at.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Column `n` of the int4 product summed in i64 (for a sum beyond int16).
fn wide_i4_sum(j: &Job, b: &[u8], a: &[f32], n: usize) -> i64 {
    (0..j.k)
        .map(|k| {
            let off = j.layout.byte_offset(k, n, j.k, j.n);
            let byte = b[off];
            let w = if j.layout.high_nibble(k, n, j.k, j.n) {
                (byte as i8) >> 4
            } else {
                ((byte << 4) as i8) >> 4
            };
            a[k] as i64 * w as i64
        })
        .sum()
}
