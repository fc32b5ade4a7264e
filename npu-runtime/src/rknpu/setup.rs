//! Setting a packed model up on the NPU: the plan checked, then for every matmul tensor, K
//! segment, core shard and M bucket ([`M_BUCKETS`]) one context `{M: bucket, K: shard.k_len,
//! N: shard.n_len, type: pipeline, B_layout: NATIVE, AC_layout: NORM, iommu_domain_id: plan}`
//! pinned to the shard's core. The shard's native bytes are copied once into a library buffer
//! bound as B of all its bucket contexts; A and C buffers are shared per shape within a domain.

use super::backend::{Mem, RknpuBackend, SegCtx, SetupStats, ShardCtx, TensorCtx, Worker};
use super::ffi::{self, MatmulInfo, MatmulIoAttr, RknnMatmulCtx};
use super::library::{hint, Rknn};
use super::plan::{self, M_BUCKETS};
use super::RknpuError;
use crate::format::{Layout, PackedModel, Pipeline, Shard, TensorDesc, TensorKind};
use crate::target::{Target, TargetId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// A and C buffers shared within a domain, by shape:
/// A by (domain, type, k_len, bucket), C by (domain, type, core, n_len, bucket).
#[derive(Default)]
struct Shared {
    a: HashMap<(u32, u32, u32, u32), usize>,
    c: HashMap<(u32, u32, u32, u32, u32), usize>,
}

/// One shard's place: the tensor, its pipeline, IOMMU domain and the chip's core count.
struct At<'a> {
    t: &'a TensorDesc<'a>,
    p: Pipeline,
    sh: &'a Shard,
    dom: u32,
    cores: u32,
}

impl At<'_> {
    /// The context's description for errors.
    fn name(&self, bucket: u32) -> String {
        let (t, sh) = (self.t, self.sh);
        format!(
            "`{}` (K segment {} of {}, K {}, N {} on core {}, M {bucket}, domain {})",
            t.name, sh.k_seg, t.geom.k_segs, sh.k_len, sh.n_len, sh.core, self.dom
        )
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
        let (n_domains, domains) = check_plan(&rknn, model, budget)?;
        let mut b = RknpuBackend::empty(rknn, n_domains);
        let mut shared = Shared::default();
        let mut max_k = 0usize;
        for (ti, t) in model.tensors.iter().enumerate() {
            let (TensorKind::Matmul, Some(p)) = (t.kind, t.pipeline) else { continue };
            max_k = max_k.max(t.geom.k_pad as usize);
            let mut segs: Vec<SegCtx> = Vec::new();
            for sh in t.shards {
                if segs.last().is_none_or(|s| s.k0 != sh.k0) {
                    segs.push(SegCtx { k0: sh.k0, k_len: sh.k_len, a: [0; 2], shards: Vec::new() });
                }
                let at = At { t, p, sh, dom: domains[ti], cores: target.cores };
                let seg = segs.last_mut().expect("pushed above");
                let shard = b.shard(model.blob, &at, &mut shared, &mut seg.a)?;
                seg.shards.push(shard);
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

    /// A backend with no contexts yet.
    fn empty(rknn: Arc<Rknn>, domains: u32) -> RknpuBackend {
        RknpuBackend {
            rknn,
            tensors: HashMap::new(),
            mems: Vec::new(),
            contexts: Vec::new(),
            workers: Vec::new(),
            rows: Vec::new(),
            s_a: vec![0.0; M_BUCKETS[M_BUCKETS.len() - 1] as usize],
            calls: [0; 3],
            stats: SetupStats { domains, ..SetupStats::default() },
            last_failure: None,
        }
    }

    /// One shard's contexts (one per bucket) with A and C bound (`a` receives the A buffer
    /// of each bucket), and its B filled from `blob` once and bound to all of them.
    fn shard(
        &mut self,
        blob: &[u8],
        at: &At<'_>,
        shared: &mut Shared,
        a: &mut [usize; M_BUCKETS.len()],
    ) -> Result<ShardCtx, RknpuError> {
        let (p, sh, dom) = (at.p, at.sh, at.dom);
        let mut ctx = [0; M_BUCKETS.len()];
        let mut c = [0; M_BUCKETS.len()];
        let mut ios: Vec<Box<MatmulIoAttr>> = Vec::new();
        for (bi, &bucket) in M_BUCKETS.iter().enumerate() {
            let (cx, io) = self.context(at, bucket)?;
            let a_key = (dom, p.rknn_matmul_type(), sh.k_len, bucket);
            a[bi] = self.shared_buf(&mut shared.a, a_key, cx, io.a.size, &at.name(bucket), "A")?;
            self.bind(cx, a[bi], &mut io.a.clone(), &at.name(bucket))?;
            let c_key = (dom, p.rknn_matmul_type(), sh.core, sh.n_len, bucket);
            c[bi] = self.shared_buf(&mut shared.c, c_key, cx, io.c.size, &at.name(bucket), "C")?;
            self.bind(cx, c[bi], &mut io.c.clone(), &at.name(bucket))?;
            ctx[bi] = cx;
            ios.push(io);
        }
        let tf = Instant::now();
        let bytes = at.t.shard_bytes(blob, sh).map_err(|e| RknpuError::Layout {
            tensor: at.name(M_BUCKETS[0]),
            why: e.to_string(),
        })?;
        let b_idx = self.alloc(ctx[0], ios[0].b.size, &at.name(M_BUCKETS[0]), "B")?;
        self.fill(b_idx, bytes);
        for (bi, io) in ios.iter().enumerate() {
            self.bind(ctx[bi], b_idx, &mut io.b.clone(), &at.name(M_BUCKETS[bi]))?;
        }
        self.stats.fill_secs += tf.elapsed().as_secs_f64();
        self.stats.b_bytes += bytes.len() as u64;
        Ok(ShardCtx { core: sh.core, n0: sh.n0, n_len: sh.n_len, ctx, c })
    }

    /// The context of one bucket: created, its io attributes checked against the packed
    /// layout, and pinned to the shard's core on multi-core chips.
    fn context(
        &mut self,
        at: &At<'_>,
        bucket: u32,
    ) -> Result<(RknnMatmulCtx, Box<MatmulIoAttr>), RknpuError> {
        let sh = at.sh;
        let info = MatmulInfo {
            m: bucket as i32,
            k: sh.k_len as i32,
            n: sh.n_len as i32,
            type_: at.p.rknn_matmul_type(),
            b_layout: ffi::layout::NATIVE,
            ac_layout: ffi::layout::NORM,
            iommu_domain_id: at.dom as i32,
            ..MatmulInfo::ZERO
        };
        let (ctx, io) = self.rknn.matmul_create(&info).map_err(|code| RknpuError::Call {
            call: "rknn_matmul_create",
            code,
            tensor: at.name(bucket),
            hint: hint(code),
        })?;
        self.contexts.push(ctx);
        self.stats.contexts += 1;
        check_io(&io, at.t.layout, at.p, bucket, sh.k_len, sh.n_len)
            .map_err(|why| RknpuError::Layout { tensor: at.name(bucket), why })?;
        if at.cores > 1 {
            // SAFETY: a live context.
            let r = unsafe { (self.rknn.set_core_mask)(ctx, 1u32 << sh.core) };
            if r < 0 {
                return Err(RknpuError::Call {
                    call: "rknn_matmul_set_core_mask",
                    code: r,
                    tensor: at.name(bucket),
                    hint: "single-core masks are required; the library or kernel driver rejected this core",
                });
            }
        }
        Ok((ctx, io))
    }

    /// The buffer `key` names in `bufs`, allocated on `ctx` the first time.
    fn shared_buf<K: std::hash::Hash + Eq>(
        &mut self,
        bufs: &mut HashMap<K, usize>,
        key: K,
        ctx: RknnMatmulCtx,
        size: u32,
        at: &str,
        which: &str,
    ) -> Result<usize, RknpuError> {
        if let Some(&i) = bufs.get(&key) {
            return Ok(i);
        }
        let i = self.alloc(ctx, size, at, which)?;
        bufs.insert(key, i);
        Ok(i)
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
}

/// The plan's domain count and each tensor's IOMMU domain, after checking that the library
/// supports that many domains and the process may open a descriptor per buffer.
fn check_plan(
    rknn: &Rknn,
    model: &PackedModel<'_>,
    budget: u64,
) -> Result<(u32, Vec<u32>), RknpuError> {
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
    let mut domains = vec![0u32; model.tensors.len()];
    plan::for_each_domain(model.tensors, budget, |i, d| domains[i] = d)
        .map_err(|e| RknpuError::Plan(e.to_string()))?;
    Ok((tot.domains, domains))
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
