//! [`RknpuBackend`]: every matmul of a packed RKNPU model through librknnrt's matmul API.
//!
//! At construction, for every matmul tensor, K segment, core shard and M bucket
//! ([`plan::M_BUCKETS`]), one context `{M: bucket, K: shard.k_len, N: shard.n_len, type:
//! pipeline, B_layout: NATIVE, AC_layout: NORM, iommu_domain_id: plan}` pinned to the shard's
//! core; the shard's native bytes are copied once into a library buffer and bound as B of all
//! its bucket contexts. A and C buffers are shared per shape within a domain ([`plan`]).
//!
//! Per call, per chunk of ≤ bucket rows and per K segment: rotate and quantize the rows on
//! the host exactly as [`crate::exec::matmul`], write A (row-major; fp16 bits, int8, or int4
//! packed low nibble = even k), run the segment's core contexts at once (one worker thread
//! per extra core, each blocking in `rknn_matmul_run`), read C and add
//! `C · s_a · s_w[seg][n]` (or the fp32 C) into `y` in ascending segment order from 0.0 — the
//! reference's own arithmetic, so integer pipelines are bit-exact whenever the library's
//! integer sums are exact.

use super::ffi::{self, MatmulInfo, MatmulIoAttr, RknnMatmulCtx, TensorMem};
use super::library::{hint, Rknn};
use super::plan::{self, M_BUCKETS};
use super::RknpuError;
use crate::backend::{Backend, PackedWeight};
use crate::error::Error;
use crate::exec::{quant, rotate};
use crate::format::{Layout, PackedModel, Pipeline, TensorKind};
use crate::target::{Target, TargetId};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// A library buffer and the context it was created with (needed to destroy it).
struct Mem {
    ptr: *mut TensorMem,
    owner: RknnMatmulCtx,
}

struct ShardCtx {
    core: u32,
    n0: u32,
    n_len: u32,
    /// Per bucket: context and the index of its C buffer.
    ctx: [RknnMatmulCtx; M_BUCKETS.len()],
    c: [usize; M_BUCKETS.len()],
}

struct SegCtx {
    k0: u32,
    k_len: u32,
    /// Per bucket: index of the A buffer.
    a: [usize; M_BUCKETS.len()],
    shards: Vec<ShardCtx>,
}

struct TensorCtx {
    geom: crate::format::Geometry,
    pipeline: Pipeline,
    segs: Vec<SegCtx>,
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
struct Worker {
    tx: Option<Sender<RknnMatmulCtx>>,
    rx: Receiver<i32>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// The RKNPU2 backend (see the module docs).
pub struct RknpuBackend {
    rknn: Arc<Rknn>,
    tensors: HashMap<String, TensorCtx>,
    mems: Vec<Mem>,
    contexts: Vec<RknnMatmulCtx>,
    workers: Vec<Worker>,
    rows: Vec<f32>,
    s_a: Vec<f32>,
    calls: [u64; 3],
    stats: SetupStats,
    last_failure: Option<RknpuError>,
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

fn native_b_dims(layout: Layout, k_len: u32, n_len: u32) -> [u32; 4] {
    match layout {
        Layout::Tiled { n_tile, k_tile, .. } => [n_len / n_tile, k_len / k_tile, n_tile, k_tile],
        Layout::RowMajor { .. } => [0; 4],
    }
}

fn c_type(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => ffi::tensor_type::FLOAT32,
        Pipeline::I8I8I32 => ffi::tensor_type::INT32,
        Pipeline::I4I4I16 => ffi::tensor_type::INT16,
    }
}

impl RknpuBackend {
    /// Loads the library ([`Rknn::load`]) and sets the model up on the NPU.
    pub fn new(model: &PackedModel<'_>) -> Result<RknpuBackend, RknpuError> {
        RknpuBackend::with_library(Arc::new(Rknn::load()?), model)
    }

    /// Sets `model` up on an already loaded library, IOMMU domains of
    /// [`Target::max_buffer`] bytes.
    pub fn with_library(rknn: Arc<Rknn>, model: &PackedModel<'_>) -> Result<Self, RknpuError> {
        let budget = Target::get(model.target).max_buffer;
        RknpuBackend::with_library_budget(rknn, model, budget)
    }

    /// As [`RknpuBackend::with_library`] with another per-domain budget (tests of the
    /// multi-domain plan use a small one).
    pub fn with_library_budget(
        rknn: Arc<Rknn>,
        model: &PackedModel<'_>,
        budget: u64,
    ) -> Result<Self, RknpuError> {
        let t0 = Instant::now();
        let target = Target::get(model.target);
        if matches!(model.target, TargetId::Cpu) {
            return Err(RknpuError::NotRknpuModel { target: target.name });
        }
        let tot = plan::totals(model.tensors, budget, |_, _, _| {})
            .map_err(|e| RknpuError::Plan(e.to_string()))?;
        if tot.domains > 1 && rknn.mem_sync.is_none() {
            return Err(RknpuError::Plan(format!(
                "the model needs {} IOMMU domains (more than {} MB of NPU memory); {} has no `iommu_domain_id` support (librknnrt 1.x): use librknnrt >= 2.0",
                tot.domains,
                budget >> 20,
                rknn.origin
            )));
        }
        check_file_limit(tot.buffers())?;
        let mut b = RknpuBackend {
            rknn,
            tensors: HashMap::new(),
            mems: Vec::new(),
            contexts: Vec::new(),
            workers: Vec::new(),
            rows: Vec::new(),
            s_a: vec![0.0; plan::M_BUCKETS[M_BUCKETS.len() - 1] as usize],
            calls: [0; 3],
            stats: SetupStats { domains: tot.domains, ..SetupStats::default() },
            last_failure: None,
        };
        let mut domains = vec![0u32; model.tensors.len()];
        plan::for_each_domain(model.tensors, budget, |i, d| domains[i] = d)
            .map_err(|e| RknpuError::Plan(e.to_string()))?;
        // Shared A / C buffers per domain and shape: (domain, pipeline, k_len | core+n_len, bucket).
        let mut a_bufs: HashMap<(u32, u32, u32, u32), usize> = HashMap::new();
        let mut c_bufs: HashMap<(u32, u32, u32, u32, u32), usize> = HashMap::new();
        let mut max_k = 0usize;
        for (ti, t) in model.tensors.iter().enumerate() {
            let (TensorKind::Matmul, Some(p)) = (t.kind, t.pipeline) else { continue };
            max_k = max_k.max(t.geom.k_pad as usize);
            let dom = domains[ti];
            let mut segs: Vec<SegCtx> = Vec::new();
            for sh in t.shards {
                let at = |bucket: u32| {
                    format!(
                        "`{}` (K segment {} of {}, K {}, N {} on core {}, M {bucket}, domain {dom})",
                        t.name, sh.k_seg, t.geom.k_segs, sh.k_len, sh.n_len, sh.core
                    )
                };
                if segs.last().is_none_or(|s| s.k0 != sh.k0) {
                    segs.push(SegCtx { k0: sh.k0, k_len: sh.k_len, a: [0; 2], shards: Vec::new() });
                }
                let mut ctxs = [0; M_BUCKETS.len()];
                let mut cs = [0; M_BUCKETS.len()];
                let mut ios: Vec<Box<MatmulIoAttr>> = Vec::new();
                for (bi, &bucket) in M_BUCKETS.iter().enumerate() {
                    let info = MatmulInfo {
                        m: bucket as i32,
                        k: sh.k_len as i32,
                        n: sh.n_len as i32,
                        type_: p.rknn_matmul_type(),
                        b_layout: ffi::layout::NATIVE,
                        ac_layout: ffi::layout::NORM,
                        iommu_domain_id: dom as i32,
                        ..MatmulInfo::ZERO
                    };
                    let (ctx, io) =
                        b.rknn.matmul_create(&info).map_err(|code| RknpuError::Call {
                            call: "rknn_matmul_create",
                            code,
                            tensor: at(bucket),
                            hint: hint(code),
                        })?;
                    b.contexts.push(ctx);
                    b.stats.contexts += 1;
                    check_io(&io, t.layout, p, bucket, sh.k_len, sh.n_len)
                        .map_err(|why| RknpuError::Layout { tensor: at(bucket), why })?;
                    if target.cores > 1 {
                        let mask = 1u32 << sh.core;
                        // SAFETY: a live context.
                        let r = unsafe { (b.rknn.set_core_mask)(ctx, mask) };
                        if r < 0 {
                            return Err(RknpuError::Call {
                                call: "rknn_matmul_set_core_mask",
                                code: r,
                                tensor: at(bucket),
                                hint: "single-core masks are required; the library or kernel driver rejected this core",
                            });
                        }
                    }
                    // A: shared per (domain, pipeline, k_len, bucket).
                    let a_key = (dom, p.rknn_matmul_type(), sh.k_len, bucket);
                    let a_idx = match a_bufs.get(&a_key) {
                        Some(&i) => i,
                        None => {
                            let i = b.alloc(ctx, io.a.size, &at(bucket), "A")?;
                            a_bufs.insert(a_key, i);
                            i
                        }
                    };
                    b.bind(ctx, a_idx, &mut ios_attr(&io, 'a'), &at(bucket))?;
                    segs.last_mut().expect("pushed above").a[bi] = a_idx;
                    let c_key = (dom, p.rknn_matmul_type(), sh.core, sh.n_len, bucket);
                    let c_idx = match c_bufs.get(&c_key) {
                        Some(&i) => i,
                        None => {
                            let i = b.alloc(ctx, io.c.size, &at(bucket), "C")?;
                            c_bufs.insert(c_key, i);
                            i
                        }
                    };
                    b.bind(ctx, c_idx, &mut ios_attr(&io, 'c'), &at(bucket))?;
                    ctxs[bi] = ctx;
                    cs[bi] = c_idx;
                    ios.push(io);
                }
                // B: one copy of the shard, bound to every bucket's context.
                let tf = Instant::now();
                let bytes = t.shard_bytes(model.blob, sh).map_err(|e| RknpuError::Layout {
                    tensor: at(M_BUCKETS[0]),
                    why: e.to_string(),
                })?;
                let b_idx = b.alloc(ctxs[0], ios[0].b.size, &at(M_BUCKETS[0]), "B")?;
                b.fill(b_idx, bytes);
                for (bi, io) in ios.iter().enumerate() {
                    b.bind(ctxs[bi], b_idx, &mut ios_attr(io, 'b'), &at(M_BUCKETS[bi]))?;
                }
                b.stats.fill_secs += tf.elapsed().as_secs_f64();
                b.stats.b_bytes += bytes.len() as u64;
                segs.last_mut().expect("pushed above").shards.push(ShardCtx {
                    core: sh.core,
                    n0: sh.n0,
                    n_len: sh.n_len,
                    ctx: ctxs,
                    c: cs,
                });
            }
            b.tensors.insert(t.name.to_owned(), TensorCtx { geom: t.geom, pipeline: p, segs });
        }
        b.rows = vec![0.0; M_BUCKETS[M_BUCKETS.len() - 1] as usize * max_k];
        for _ in 1..target.cores {
            b.workers.push(Worker::start(b.rknn.clone()));
        }
        b.stats.buffers = b.mems.len() as u64;
        b.stats.setup_secs = t0.elapsed().as_secs_f64();
        Ok(b)
    }

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

    fn alloc(
        &mut self,
        ctx: RknnMatmulCtx,
        size: u32,
        at: &str,
        which: &str,
    ) -> Result<usize, RknpuError> {
        // SAFETY: a live context; the library returns a buffer it owns or NULL.
        let ptr = unsafe { (self.rknn.create_mem)(ctx, size) };
        // SAFETY: non-null pointers from create_mem point at a valid rknn_tensor_mem.
        if ptr.is_null() || unsafe { (*ptr).virt_addr.is_null() || (*ptr).size < size } {
            return Err(RknpuError::Call {
                call: "rknn_create_mem",
                code: ffi::ret::MALLOC_FAIL,
                tensor: format!("{which} ({size} bytes) of {at}"),
                hint: "out of NPU memory (or the IOMMU domain is full)",
            });
        }
        self.mems.push(Mem { ptr, owner: ctx });
        Ok(self.mems.len() - 1)
    }

    fn bind(
        &mut self,
        ctx: RknnMatmulCtx,
        mem: usize,
        attr: &mut ffi::MatmulTensorAttr,
        at: &str,
    ) -> Result<(), RknpuError> {
        // SAFETY: live context, buffer and attribute.
        let r = unsafe { (self.rknn.set_io_mem)(ctx, self.mems[mem].ptr, attr) };
        if r < 0 {
            return Err(RknpuError::Call {
                call: "rknn_matmul_set_io_mem",
                code: r,
                tensor: at.to_owned(),
                hint: hint(r),
            });
        }
        Ok(())
    }

    fn fill(&mut self, mem: usize, bytes: &[u8]) {
        let m = self.mems[mem].ptr;
        // SAFETY: `alloc` checked the buffer is at least as large as the io attribute's size,
        // which `check_io` checked equals the shard's length.
        unsafe {
            let dst = (*m).virt_addr.cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        }
        self.sync(mem, ffi::sync_mode::TO_DEVICE);
    }

    fn sync(&self, mem: usize, mode: core::ffi::c_int) {
        if let Some(f) = self.rknn.mem_sync {
            let m = &self.mems[mem];
            // SAFETY: live buffer and its owning context. A failed sync leaves the buffer
            // as the CPU wrote it; 1.x libraries have no sync (uncached buffers).
            unsafe { f(m.owner, m.ptr, mode) };
        }
    }

    fn buf(&mut self, mem: usize) -> &mut [u8] {
        let m = self.mems[mem].ptr;
        // SAFETY: a live buffer of `size` bytes, only touched through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut((*m).virt_addr.cast::<u8>(), (*m).size as usize) }
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

fn ios_attr(io: &MatmulIoAttr, which: char) -> ffi::MatmulTensorAttr {
    match which {
        'a' => io.a,
        'b' => io.b,
        _ => io.c,
    }
}

/// Checks the io attributes the library returned against the layout the blob was packed in.
fn check_io(
    io: &MatmulIoAttr,
    layout: Layout,
    p: Pipeline,
    m: u32,
    k: u32,
    n: u32,
) -> Result<(), String> {
    let want_b = native_b_dims(layout, k, n);
    let b_len = layout.byte_len(k as usize, n as usize) as u64;
    if io.b.dims() != want_b || io.b.size as u64 != b_len {
        return Err(format!(
            "the library expects B with dims {:?} and {} bytes; the blob's native shard has dims {want_b:?} and {b_len} bytes",
            io.b.dims(),
            io.b.size
        ));
    }
    let a_len = m as u64 * plan::a_row_bytes(p, k);
    if io.a.dims() != [m, k] || io.a.size as u64 != a_len {
        return Err(format!("A: the library expects dims {:?} ({} bytes), the backend writes [{m}, {k}] ({a_len} bytes)", io.a.dims(), io.a.size));
    }
    let c_len = m as u64 * n as u64 * plan::c_elem_bytes(p);
    if io.c.dims() != [m, n] || io.c.size as u64 != c_len || io.c.type_ != c_type(p) {
        return Err(format!(
            "C: the library returns dims {:?} ({} bytes, type {}), the backend reads [{m}, {n}] ({c_len} bytes, type {})",
            io.c.dims(),
            io.c.size,
            io.c.type_,
            c_type(p)
        ));
    }
    Ok(())
}

/// Fails when the process may not open the file descriptors the plan needs (one dma-buf per
/// buffer, plus a margin for the process' own files); raises the soft limit when the hard one
/// allows.
fn check_file_limit(buffers: u64) -> Result<(), RknpuError> {
    const MARGIN: u64 = 64;
    let need = buffers + MARGIN;
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid out pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(());
    }
    // rlim_t is u64 on 64-bit Linux but not on every target.
    #[allow(clippy::unnecessary_cast)]
    let (soft, hard) = (lim.rlim_cur as u64, lim.rlim_max as u64);
    if soft >= need {
        return Ok(());
    }
    if hard >= need {
        lim.rlim_cur = need as libc::rlim_t;
        // SAFETY: a valid rlimit within the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
            return Ok(());
        }
    }
    Err(RknpuError::FileLimit { need, soft, hard })
}

impl Worker {
    fn start(rknn: Arc<Rknn>) -> Worker {
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
        let blob = w.blob();
        let Some(tc) = self.tensors.get(desc.name) else {
            return Err(Error::Backend("rknpu: tensor was not set up on the NPU"));
        };
        if tc.geom != desc.geom || desc.pipeline != Some(tc.pipeline) {
            return Err(Error::Backend("rknpu: tensor differs from the one set up on the NPU"));
        }
        let (g, p) = (tc.geom, tc.pipeline);
        let (k, n, kp) = (g.k as usize, g.n as usize, g.k_pad as usize);
        if x.len() != m * k {
            return Err(Error::Length { what: "x", need: m * k, got: x.len() });
        }
        if y.len() != m * n {
            return Err(Error::Length { what: "y", need: m * n, got: y.len() });
        }
        let qmax = p.qmax();
        let max_bucket = M_BUCKETS[M_BUCKETS.len() - 1] as usize;
        let mut r0 = 0;
        while r0 < m {
            let rows = (m - r0).min(max_bucket);
            let bucket = plan::bucket_for(rows) as usize;
            let bi = M_BUCKETS.iter().position(|&b| b as usize == bucket).unwrap_or(0);
            // Rows padded to k_pad and rotated, as the reference does before segmenting.
            for r in 0..rows {
                let buf = &mut self.rows[r * kp..(r + 1) * kp];
                buf[..k].copy_from_slice(&x[(r0 + r) * k..(r0 + r + 1) * k]);
                buf[k..].fill(0.0);
                if let Some(rot) = desc.rotation {
                    rotate::rotate(rot, buf);
                }
            }
            y[r0 * n..(r0 + rows) * n].fill(0.0);
            for seg in 0..g.k_segs as usize {
                let (k0, kl, a_idx) = {
                    let s = &self.tensors[desc.name].segs[seg];
                    (s.k0 as usize, s.k_len as usize, s.a[bi])
                };
                // Quantize each row's segment in place, as exec does; write A.
                let row_bytes = plan::a_row_bytes(p, kl as u32) as usize;
                for r in 0..rows {
                    let a = &mut self.rows[r * kp + k0..r * kp + k0 + kl];
                    self.s_a[r] = match p {
                        Pipeline::F16F16F32 => {
                            a.iter_mut().for_each(|v| *v = quant::to_f16_and_back(*v));
                            1.0
                        }
                        Pipeline::I8I8I32 | Pipeline::I4I4I16 => {
                            let s = quant::scale_for(quant::absmax(a), qmax);
                            a.iter_mut().for_each(|v| *v = quant::quantize(*v, s, qmax) as f32);
                            s
                        }
                    };
                }
                let (rows_f, buf_ptr) = (&self.rows, self.mems[a_idx].ptr);
                // SAFETY: the A buffer holds bucket × row_bytes bytes (check_io) and nothing
                // else references it while no run is in flight.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        (*buf_ptr).virt_addr.cast::<u8>(),
                        bucket * row_bytes,
                    )
                };
                for r in 0..bucket {
                    let out = &mut dst[r * row_bytes..(r + 1) * row_bytes];
                    if r >= rows {
                        out.fill(0);
                        continue;
                    }
                    let a = &rows_f[r * kp + k0..r * kp + k0 + kl];
                    write_a(p, a, out);
                }
                self.sync(a_idx, ffi::sync_mode::TO_DEVICE);
                self.run_seg(desc.name, seg, bi)?;
                let shard_list: Vec<(u32, u32, usize)> = self.tensors[desc.name].segs[seg]
                    .shards
                    .iter()
                    .map(|s| (s.n0, s.n_len, s.c[bi]))
                    .collect();
                for (n0, n_len, c_idx) in shard_list {
                    self.sync(c_idx, ffi::sync_mode::FROM_DEVICE);
                    let (n0, n_len) = (n0 as usize, n_len as usize);
                    let nl_end = n_len.min(n.saturating_sub(n0));
                    let s_a: Vec<f32> = self.s_a[..rows].to_vec();
                    let c = self.buf(c_idx);
                    for (r, &sa) in s_a.iter().enumerate() {
                        let yrow = &mut y[(r0 + r) * n..(r0 + r + 1) * n];
                        for nl in 0..nl_end {
                            let at = r * n_len + nl;
                            let nn = n0 + nl;
                            let partial = match p {
                                Pipeline::F16F16F32 => f32::from_le_bytes(word4(c, at)),
                                Pipeline::I8I8I32 => {
                                    let acc = i32::from_le_bytes(word4(c, at));
                                    acc as f32 * sa * desc.scale(blob, seg as u32, nn as u32)
                                }
                                Pipeline::I4I4I16 => {
                                    let acc = i16::from_le_bytes([c[2 * at], c[2 * at + 1]]);
                                    // A saturated int16 sum cannot be recovered; with the
                                    // packer's K ≤ 640 segments |sum| ≤ 31 360 otherwise.
                                    if acc == i16::MAX || acc == i16::MIN {
                                        return Err(Error::AccumulatorOverflow {
                                            k_seg: seg as u32,
                                        });
                                    }
                                    acc as f32 * sa * desc.scale(blob, seg as u32, nn as u32)
                                }
                            };
                            yrow[nn] += partial;
                        }
                    }
                }
            }
            r0 += rows;
        }
        Ok(())
    }
}

fn word4(c: &[u8], at: usize) -> [u8; 4] {
    [c[4 * at], c[4 * at + 1], c[4 * at + 2], c[4 * at + 3]]
}

/// One row of A in the library's row-major (NORM) layout for pipeline `p`.
fn write_a(p: Pipeline, a: &[f32], out: &mut [u8]) {
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
