//! [`RknpuBackend`]: every matmul of a packed RKNPU model through librknnrt's matmul API.
//!
//! Construction ([`super::setup`]) creates one context per tensor, K segment, core shard and
//! M bucket ([`plan::M_BUCKETS`]), with B filled from the blob once.
//!
//! Per call, per chunk of ≤ bucket rows and per K segment: rotate and quantize the rows on
//! the host exactly as [`crate::exec::matmul`], write A (row-major; fp16 bits, int8, or int4
//! packed low nibble = even k), run the segment's core contexts at once (one worker thread
//! per extra core, each blocking in `rknn_matmul_run`), read C and add
//! `C · s_a · s_w[seg][n]` (or the fp32 C) into `y` in ascending segment order from 0.0 — the
//! reference's own arithmetic, so integer pipelines are bit-exact whenever the library's
//! integer sums are exact.

use super::ffi::{self, RknnMatmulCtx, TensorMem};
use super::library::{hint, Rknn};
use super::plan::{self, M_BUCKETS};
use super::RknpuError;
use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::exec::{quant, rotate};
use crate::format::{Pipeline, TensorDesc};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// A library buffer and the context it was created with (needed to destroy it).
pub(super) struct Mem {
    pub(super) ptr: *mut TensorMem,
    pub(super) owner: RknnMatmulCtx,
}

pub(super) struct ShardCtx {
    pub(super) core: u32,
    pub(super) n0: u32,
    pub(super) n_len: u32,
    /// Per bucket: context and the index of its C buffer.
    pub(super) ctx: [RknnMatmulCtx; M_BUCKETS.len()],
    pub(super) c: [usize; M_BUCKETS.len()],
}

pub(super) struct SegCtx {
    pub(super) k0: u32,
    pub(super) k_len: u32,
    /// Per bucket: index of the A buffer.
    pub(super) a: [usize; M_BUCKETS.len()],
    pub(super) shards: Vec<ShardCtx>,
}

pub(super) struct TensorCtx {
    pub(super) geom: crate::format::Geometry,
    pub(super) pipeline: Pipeline,
    pub(super) segs: Vec<SegCtx>,
}

/// Sizes and costs of the backend's setup, for logs and docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetupStats {
    /// Matmul contexts created.
    pub contexts: u64,
    /// Library buffers allocated (B, A, C).
    pub buffers: u64,
    /// Bytes of B copied from the blob.
    pub b_bytes: u64,
    /// Seconds spent allocating and filling B (copy + sync + bind).
    pub fill_secs: f64,
    /// Seconds of the whole setup.
    pub setup_secs: f64,
    /// IOMMU domains used.
    pub domains: u32,
}

/// One worker per extra core: receives a context, runs it, answers the return code.
pub(super) struct Worker {
    tx: Option<Sender<RknnMatmulCtx>>,
    rx: Receiver<i32>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// The RKNPU2 backend (see the module docs).
pub struct RknpuBackend {
    pub(super) rknn: Arc<Rknn>,
    pub(super) tensors: HashMap<String, TensorCtx>,
    pub(super) mems: Vec<Mem>,
    pub(super) contexts: Vec<RknnMatmulCtx>,
    pub(super) workers: Vec<Worker>,
    pub(super) rows: Vec<f32>,
    pub(super) s_a: Vec<f32>,
    pub(super) calls: [u64; 3],
    pub(super) stats: SetupStats,
    pub(super) last_failure: Option<RknpuError>,
}

impl std::fmt::Debug for RknpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RknpuBackend")
            .field("library", &self.rknn.origin)
            .field("tensors", &self.tensors.len())
            .field("stats", &self.stats)
            .field("calls", &self.calls)
            .finish()
    }
}

// SAFETY: the raw buffer pointers are owned by this value and only touched through `&mut self`
// (or by the library during a blocking run started from `&mut self`).
unsafe impl Send for RknpuBackend {}

impl RknpuBackend {
    /// Setup sizes and costs.
    pub fn stats(&self) -> SetupStats {
        self.stats
    }

    /// `rknn_matmul_run` calls issued per core so far.
    pub fn calls_per_core(&self) -> [u64; 3] {
        self.calls
    }

    /// The library in use.
    pub fn library(&self) -> &Rknn {
        &self.rknn
    }

    /// The full description of the last failed call (the [`Error`] returned by
    /// [`Backend::matmul`] carries only the call and its code).
    pub fn last_failure(&self) -> Option<&RknpuError> {
        self.last_failure.as_ref()
    }

    pub(super) fn sync(&self, mem: usize, mode: core::ffi::c_int) {
        if let Some(f) = self.rknn.mem_sync {
            let m = &self.mems[mem];
            // SAFETY: live buffer and its owning context. A failed sync leaves the buffer
            // as the CPU wrote it; 1.x libraries have no sync (uncached buffers).
            unsafe { f(m.owner, m.ptr, mode) };
        }
    }

    /// A buffer's bytes, to read C after a run.
    fn mem_bytes(&self, mem: usize) -> &[u8] {
        let m = self.mems[mem].ptr;
        // SAFETY: a live buffer of `size` bytes, written only by the library during a run,
        // which no reader overlaps (runs block until done).
        unsafe { std::slice::from_raw_parts((*m).virt_addr.cast::<u8>(), (*m).size as usize) }
    }

    /// Checks a call against the tensor set up under its name; its `(k, n)`.
    fn check_call(
        &self,
        desc: &TensorDesc<'_>,
        x: &[f32],
        m: usize,
        y: &[f32],
    ) -> Result<(usize, usize), Error> {
        let Some(tc) = self.tensors.get(desc.name) else {
            return Err(Error::Backend("rknpu: tensor was not set up on the NPU"));
        };
        if tc.geom != desc.geom || desc.pipeline != Some(tc.pipeline) {
            return Err(Error::Backend("rknpu: tensor differs from the one set up on the NPU"));
        }
        let (k, n) = (tc.geom.k as usize, tc.geom.n as usize);
        if x.len() != m * k {
            return Err(Error::Length { what: "x", need: m * k, got: x.len() });
        }
        if y.len() != m * n {
            return Err(Error::Length { what: "y", need: m * n, got: y.len() });
        }
        Ok((k, n))
    }

    /// `x` (rows × k) into the row buffer, padded to k_pad and rotated, as the reference does
    /// before segmenting.
    fn load_rows(&mut self, desc: &TensorDesc<'_>, x: &[f32]) {
        let (k, kp) = (desc.geom.k as usize, desc.geom.k_pad as usize);
        for (r, src) in x.chunks_exact(k).enumerate() {
            let buf = &mut self.rows[r * kp..(r + 1) * kp];
            buf[..k].copy_from_slice(src);
            buf[k..].fill(0.0);
            if let Some(rot) = desc.rotation {
                rotate::rotate(rot, buf);
            }
        }
    }

    /// Quantizes segment `seg` of the first `rows` rows in place, as exec does (their scales
    /// into `s_a`), and writes bucket `bi`'s A buffer (rows past `rows` zero).
    fn write_a(&mut self, name: &str, seg: usize, bi: usize, rows: usize) {
        let RknpuBackend { tensors, rows: buf, s_a, mems, .. } = self;
        let tc = &tensors[name];
        let (p, kp) = (tc.pipeline, tc.geom.k_pad as usize);
        let s = &tc.segs[seg];
        let (k0, kl, a_idx) = (s.k0 as usize, s.k_len as usize, s.a[bi]);
        for (r, sa) in s_a.iter_mut().enumerate().take(rows) {
            let a = &mut buf[r * kp + k0..r * kp + k0 + kl];
            *sa = match p {
                Pipeline::F16F16F32 => {
                    a.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
                    1.0
                }
                Pipeline::I8I8I32 | Pipeline::I4I4I16 => {
                    let s = quant::scale_for(quant::absmax(a), p.qmax());
                    a.iter_mut().for_each(|v| *v = quant::quantize(*v, s, p.qmax()) as f32);
                    s
                }
            };
        }
        let row_bytes = plan::a_row_bytes(p, kl as u32) as usize;
        let bucket = M_BUCKETS[bi] as usize;
        let ptr = mems[a_idx].ptr;
        // SAFETY: the A buffer holds bucket × row_bytes bytes (check_io) and nothing else
        // references it while no run is in flight.
        let dst = unsafe {
            std::slice::from_raw_parts_mut((*ptr).virt_addr.cast::<u8>(), bucket * row_bytes)
        };
        for (r, out) in dst.chunks_exact_mut(row_bytes).enumerate() {
            if r < rows {
                write_row(p, &buf[r * kp + k0..r * kp + k0 + kl], out);
            } else {
                out.fill(0);
            }
        }
        self.sync(a_idx, ffi::sync_mode::TO_DEVICE);
    }

    /// Adds segment `seg`'s C of every shard, scaled as the reference does, into `y`
    /// (rows × n).
    fn add_c(
        &self,
        desc: &TensorDesc<'_>,
        blob: &[u8],
        seg: usize,
        bi: usize,
        y: &mut [f32],
    ) -> Result<(), Error> {
        let tc = &self.tensors[desc.name];
        let (p, n) = (tc.pipeline, tc.geom.n as usize);
        for sh in &tc.segs[seg].shards {
            self.sync(sh.c[bi], ffi::sync_mode::FROM_DEVICE);
            let c = self.mem_bytes(sh.c[bi]);
            let (n0, n_len) = (sh.n0 as usize, sh.n_len as usize);
            let valid = n_len.min(n.saturating_sub(n0));
            for (r, yrow) in y.chunks_exact_mut(n).enumerate() {
                let sa = self.s_a[r];
                for nl in 0..valid {
                    let (at, nn) = (r * n_len + nl, n0 + nl);
                    // (sum · s_a) · s_w, in the reference's order.
                    let scaled = |sum: f32| sum * sa * desc.scale(blob, seg as u32, nn as u32);
                    yrow[nn] += match p {
                        Pipeline::F16F16F32 => f32::from_le_bytes(word4(c, at)),
                        Pipeline::I8I8I32 => scaled(i32::from_le_bytes(word4(c, at)) as f32),
                        Pipeline::I4I4I16 => scaled(i16_sum(c, at, seg)? as f32),
                    };
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, call: &'static str, code: i32, tensor: String) -> Error {
        self.last_failure = Some(RknpuError::Call { call, code, tensor, hint: hint(code) });
        Error::Npu { call, code }
    }

    fn run_seg(&mut self, t: &str, seg: usize, bi: usize) -> Result<(), Error> {
        let tc = &self.tensors[t];
        let shards: Vec<(u32, RknnMatmulCtx)> =
            tc.segs[seg].shards.iter().map(|s| (s.core, s.ctx[bi])).collect();
        // Cores 1.. on the workers, core 0 (or a single shard) here, all at once.
        let mut sent = Vec::new();
        for &(core, ctx) in &shards[1..] {
            let w = &self.workers[(core as usize).saturating_sub(1).min(self.workers.len() - 1)];
            if let Some(tx) = &w.tx {
                if tx.send(ctx).is_ok() {
                    sent.push((core, ctx, true));
                    continue;
                }
            }
            sent.push((core, ctx, false));
        }
        let (core0, ctx0) = shards[0];
        // SAFETY: a live context with A, B and C bound.
        let r0 = unsafe { (self.rknn.run)(ctx0) };
        self.calls[(core0 as usize).min(2)] += 1;
        let mut first_err = (r0 < 0).then_some((core0, r0));
        for (core, ctx, ok) in sent {
            let r = if ok {
                let w =
                    &self.workers[(core as usize).saturating_sub(1).min(self.workers.len() - 1)];
                w.rx.recv().unwrap_or(ffi::ret::FAIL)
            } else {
                // SAFETY: as above; the worker is gone, run here.
                unsafe { (self.rknn.run)(ctx) }
            };
            self.calls[(core as usize).min(2)] += 1;
            if r < 0 && first_err.is_none() {
                first_err = Some((core, r));
            }
        }
        if let Some((core, code)) = first_err {
            return Err(self.fail(
                "rknn_matmul_run",
                code,
                format!("`{t}` (K segment {seg}, core {core})"),
            ));
        }
        Ok(())
    }
}

impl Worker {
    pub(super) fn start(rknn: Arc<Rknn>) -> Worker {
        let (tx, wrx) = channel::<RknnMatmulCtx>();
        let (wtx, rx) = channel::<i32>();
        let handle = std::thread::Builder::new()
            .name("rknpu-core".into())
            .spawn(move || {
                while let Ok(ctx) = wrx.recv() {
                    // SAFETY: the backend sends only live contexts and waits for the answer
                    // before touching their buffers or destroying them.
                    let r = unsafe { (rknn.run)(ctx) };
                    if wtx.send(r).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Worker { tx: handle.as_ref().map(|_| tx), rx, handle }
    }
}

impl Drop for RknpuBackend {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.tx = None;
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
        for m in self.mems.drain(..) {
            // SAFETY: buffers created by this backend, destroyed once, before their contexts.
            unsafe { (self.rknn.destroy_mem)(m.owner, m.ptr) };
        }
        for ctx in self.contexts.drain(..) {
            // SAFETY: contexts created by this backend, destroyed once.
            unsafe { (self.rknn.destroy)(ctx) };
        }
    }
}

impl Backend for RknpuBackend {
    fn name(&self) -> &'static str {
        "rknpu"
    }

    fn scratch_len(&self, _w: &PackedWeight<'_>) -> usize {
        0
    }

    fn matmul(
        &mut self,
        w: &PackedWeight<'_>,
        x: &[f32],
        m: usize,
        y: &mut [f32],
        _scratch: &mut [f32],
    ) -> Result<(), Error> {
        let desc = w.desc();
        let (k, n) = self.check_call(desc, x, m, y)?;
        let max_bucket = M_BUCKETS[M_BUCKETS.len() - 1] as usize;
        y.fill(0.0);
        let mut r0 = 0;
        while r0 < m {
            let rows = (m - r0).min(max_bucket);
            let bucket = plan::bucket_for(rows);
            let bi = M_BUCKETS.iter().position(|&b| b == bucket).unwrap_or(M_BUCKETS.len() - 1);
            self.load_rows(desc, &x[r0 * k..(r0 + rows) * k]);
            for seg in 0..desc.geom.k_segs as usize {
                self.write_a(desc.name, seg, bi, rows);
                self.run_seg(desc.name, seg, bi)?;
                self.add_c(desc, w.blob(), seg, bi, &mut y[r0 * n..(r0 + rows) * n])?;
            }
            r0 += rows;
        }
        Ok(())
    }
}

fn word4(c: &[u8], at: usize) -> [u8; 4] {
    [c[4 * at], c[4 * at + 1], c[4 * at + 2], c[4 * at + 3]]
}

/// The int16 sum at `at`; a saturated one cannot be recovered (with the packer's K ≤ 640
/// segments |sum| ≤ 31 360 otherwise).
fn i16_sum(c: &[u8], at: usize, seg: usize) -> Result<i16, Error> {
    let acc = i16::from_le_bytes([c[2 * at], c[2 * at + 1]]);
    if acc == i16::MAX || acc == i16::MIN {
        return Err(Error::AccumulatorOverflow { k_seg: seg as u32 });
    }
    Ok(acc)
}

/// One row of A in the library's row-major (NORM) layout for pipeline `p`.
fn write_row(p: Pipeline, a: &[f32], out: &mut [u8]) {
    match p {
        Pipeline::F16F16F32 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(a) {
                o.copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
            }
        }
        Pipeline::I8I8I32 => {
            for (o, &v) in out.iter_mut().zip(a) {
                *o = v as i8 as u8;
            }
        }
        Pipeline::I4I4I16 => {
            for (o, pair) in out.iter_mut().zip(a.chunks_exact(2)) {
                let lo = (pair[0] as i8 as u8) & 0x0f;
                let hi = (pair[1] as i8 as u8) & 0x0f;
                *o = lo | (hi << 4);
            }
        }
    }
}
