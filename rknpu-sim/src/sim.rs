//! The stand-in's state and exported functions (see the crate docs for the rules).

use npu_runtime::exec::{raw_dot, RawSum};
use npu_runtime::format::{Layout, Pipeline};
use npu_runtime::rknpu::ffi::{self, *};
use npu_runtime::target::{Target, TargetId};
use std::collections::BTreeMap;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};
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

struct Ctx {
    pipeline: Pipeline,
    layout: Layout,
    m: u32,
    k: u32,
    n: u32,
    ac_native: bool,
    domain: usize,
    cores: u32,
    /// Core the runs go to (AUTO = core 0).
    core: u32,
    io: MatmulIoAttr,
    bound: [Option<usize>; 3],
}

struct MemRec {
    data: *mut u8,
    size: u32,
    domain: usize,
    accounted: u64,
    mapped: usize,
}

#[derive(Default)]
struct State {
    next_ctx: u64,
    next_fd: i32,
    ctxs: BTreeMap<u64, Ctx>,
    mems: BTreeMap<usize, MemRec>,
    domain_used: [u64; DOMAINS],
    stats: [SimCoreStats; CORES],
    syncs: u64,
}

// SAFETY: the raw pointers in `MemRec` are mappings owned by the state, used under the lock
// (or, during a run, while the caller guarantees the buffers stay alive).
unsafe impl Send for State {}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static RUNNING: AtomicU32 = AtomicU32::new(0);
static PEAK: AtomicU32 = AtomicU32::new(0);

fn state() -> MutexGuard<'static, Option<State>> {
    let mut g = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(State { next_ctx: 1, next_fd: 1000, ..State::default() });
    }
    g
}

fn log(msg: &str) {
    eprintln!("E RKNN: {msg}");
}

fn chip() -> (TargetId, &'static str) {
    match std::env::var("RKNN_SIM_CHIP").ok().as_deref() {
        Some("rk3576") => (TargetId::Rk3576, "rk3576"),
        Some("rk3566") | Some("rk3568") => (TargetId::Rk3566, "rk3566"),
        _ => (TargetId::Rk3588, "rk3588"),
    }
}

fn v1() -> bool {
    std::env::var("RKNN_SIM_VERSION").is_ok_and(|v| v.starts_with("1."))
}

fn pipeline_of(t: u32) -> Option<Pipeline> {
    match t {
        1 => Some(Pipeline::F16F16F32),
        2 => Some(Pipeline::I8I8I32),
        10 => Some(Pipeline::I4I4I16),
        _ => None,
    }
}

fn elem_type(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => ffi::tensor_type::FLOAT16,
        Pipeline::I8I8I32 => ffi::tensor_type::INT8,
        Pipeline::I4I4I16 => ffi::tensor_type::INT4,
    }
}

fn out_type(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => ffi::tensor_type::FLOAT32,
        Pipeline::I8I8I32 => ffi::tensor_type::INT32,
        Pipeline::I4I4I16 => ffi::tensor_type::INT16,
    }
}

/// A's native inner block (C2 of the feature cube).
fn a_c2(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => 8,
        Pipeline::I8I8I32 => 16,
        Pipeline::I4I4I16 => 32,
    }
}

fn c_c2(p: Pipeline) -> u32 {
    if p.acc_bits() == 16 {
        8
    } else {
        4
    }
}

fn attr(name: &str, dims: &[u32], size: u64, type_: u32) -> MatmulTensorAttr {
    let mut a = MatmulTensorAttr::ZERO;
    set_name(&mut a.name, name);
    a.n_dims = dims.len() as u32;
    a.dims[..dims.len()].copy_from_slice(dims);
    a.size = size as u32;
    a.type_ = type_;
    a
}

/// `rknn_matmul_create`.
///
/// # Safety
/// Pointers valid for the ABI's struct sizes (or null).
#[no_mangle]
pub unsafe extern "C" fn rknn_matmul_create(
    ctx: *mut RknnMatmulCtx,
    info: *mut MatmulInfo,
    io: *mut MatmulIoAttr,
) -> c_int {
    if ctx.is_null() || info.is_null() || io.is_null() {
        log("rknn_matmul_create: null argument");
        return ret::PARAM_INVALID;
    }
    if std::env::var("RKNN_SIM_DEVICE").is_ok_and(|v| v == "0") {
        log("failed to open rknpu module, need to insmod rknpu dirver!");
        return ret::DEVICE_UNAVAILABLE;
    }
    // SAFETY: checked non-null; the caller passes a 64-byte rknn_matmul_info.
    let info = unsafe { *info };
    let (chip, chip_name) = chip();
    let target = Target::get(chip);
    let old = v1();
    let spec = pipeline_of(info.type_)
        .filter(|p| !old || *p != Pipeline::I4I4I16)
        .and_then(|p| target.spec(p));
    let Some(spec) = spec else {
        log(&format!("meet unsupported matmul dtype: {}", info.type_));
        return ret::PARAM_INVALID;
    };
    let p = spec.pipeline;
    let (m, k, n) = (info.m, info.k, info.n);
    if m <= 0 || k <= 0 || n <= 0 {
        log(&format!("invalid matmul shape M={m} K={k} N={n}"));
        return ret::PARAM_INVALID;
    }
    let (m, k, n) = (m as u32, k as u32, n as u32);
    if k % spec.k_align != 0 {
        log(&format!("matmul K must be align with {}!", spec.k_align));
        return ret::PARAM_INVALID;
    }
    if n % spec.n_align != 0 {
        log(&format!("matmul N must be align with {}!", spec.n_align));
        return ret::PARAM_INVALID;
    }
    let k_max = if old {
        4096
    } else {
        match chip {
            TargetId::Rk3588 => 8192,
            TargetId::Rk3576 => 4096,
            _ => 10240,
        }
    };
    if k > k_max {
        log(&format!("matmul K must be less than or equal {k_max}!"));
        return ret::PARAM_INVALID;
    }
    let (b_layout, ac_layout, domain) = if old {
        // 1.5.2 reads i32 native_layout at 16 and perf_layout at 20 (the i16 fields overlay
        // them when the quant types are zero); nothing after byte 24.
        (
            info.b_layout as i32 | ((info.b_quant_type as i32) << 16),
            info.ac_layout as i32 | ((info.ac_quant_type as i32) << 16),
            0,
        )
    } else {
        if info.b_quant_type != 0 || info.ac_quant_type != 0 {
            log("rknn-sim: only per-layer quant types (0) are simulated");
            return ret::PARAM_INVALID;
        }
        (info.b_layout as i32, info.ac_layout as i32, info.iommu_domain_id)
    };
    if b_layout != ffi::layout::NATIVE as i32 {
        log(&format!("rknn-sim: B layout {b_layout} not simulated (native B only)"));
        return ret::PARAM_INVALID;
    }
    if ac_layout != 0 && ac_layout != 1 {
        log(&format!("invalid AC_layout: {ac_layout}"));
        return ret::PARAM_INVALID;
    }
    if domain < 0 || domain as usize >= DOMAINS {
        log(&format!("invalid iommu_domain_id: {domain}"));
        return ret::PARAM_INVALID;
    }
    let Layout::Tiled { n_tile, k_tile, .. } = spec.layout else {
        return ret::FAIL;
    };
    let ac_native = ac_layout == 1;
    let bits = p.elem().bits() as u64;
    let a_size = m as u64 * k as u64 * bits / 8;
    let b_size = k as u64 * n as u64 * bits / 8;
    let c_size = m as u64 * n as u64 * p.acc_bits() as u64 / 8;
    if b_size > u32::MAX as u64 || a_size > u32::MAX as u64 || c_size > u32::MAX as u64 {
        log("matmul tensor larger than 4 GiB");
        return ret::PARAM_INVALID;
    }
    let a = if ac_native {
        attr("A", &[k / a_c2(p), m, a_c2(p)], a_size, elem_type(p))
    } else {
        attr("A", &[m, k], a_size, elem_type(p))
    };
    let b = attr("B", &[n / n_tile, k / k_tile, n_tile, k_tile], b_size, elem_type(p));
    let c = if ac_native {
        attr("C", &[n / c_c2(p), m, c_c2(p)], c_size, out_type(p))
    } else {
        attr("C", &[m, n], c_size, out_type(p))
    };
    let io_val = MatmulIoAttr { a, b, c };
    // SAFETY: checked non-null.
    unsafe { *io = io_val };
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let id = s.next_ctx;
    s.next_ctx += 1;
    s.ctxs.insert(
        id,
        Ctx {
            pipeline: p,
            layout: spec.layout,
            m,
            k,
            n,
            ac_native,
            domain: domain as usize,
            cores: target.cores,
            core: 0,
            io: io_val,
            bound: [None; 3],
        },
    );
    let _ = chip_name;
    // SAFETY: checked non-null.
    unsafe { *ctx = id };
    ret::SUCC
}

/// `rknn_matmul_set_core_mask`.
#[no_mangle]
pub extern "C" fn rknn_matmul_set_core_mask(ctx: RknnMatmulCtx, mask: u32) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get_mut(&ctx) else {
        log("rknn_matmul_set_core_mask: invalid context");
        return ret::CTX_INVALID;
    };
    if c.cores <= 1 {
        log("rknn_matmul_set_core_mask: this chip has one NPU core");
        return ret::FAIL;
    }
    match mask {
        0 => {
            c.core = 0;
            ret::SUCC
        }
        m if m.is_power_of_two() && m.trailing_zeros() < c.cores => {
            c.core = m.trailing_zeros();
            ret::SUCC
        }
        m => {
            log(&format!("Not support core mask: {m}, fallback to single core auto mode"));
            c.core = 0;
            ret::FAIL
        }
    }
}

fn new_mem(
    s: &mut State,
    domain: usize,
    data: *mut u8,
    size: u32,
    mapped: usize,
    accounted: u64,
    flags: u32,
) -> *mut TensorMem {
    let fd = s.next_fd;
    s.next_fd += 1;
    let mem = Box::into_raw(Box::new(TensorMem {
        virt_addr: data.cast(),
        phys_addr: ((domain as u64) << 32) | (s.domain_used[domain] - accounted),
        fd,
        offset: 0,
        size,
        flags,
        priv_data: std::ptr::null_mut(),
    }));
    s.mems.insert(mem as usize, MemRec { data, size, domain, accounted, mapped });
    mem
}

fn alloc(ctx: RknnMatmulCtx, size: u64) -> *mut TensorMem {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get(&ctx) else {
        log("rknn_create_mem: invalid context");
        return std::ptr::null_mut();
    };
    let domain = c.domain;
    if size == 0 || size > u32::MAX as u64 {
        log(&format!("rknn_create_mem: invalid size {size}"));
        return std::ptr::null_mut();
    }
    let pages = size.div_ceil(4096) * 4096;
    if s.domain_used[domain] + pages > DOMAIN_BYTES {
        log(&format!(
            "rknn_create_mem: iommu domain {domain} is full ({} of {} bytes used, {pages} asked)",
            s.domain_used[domain], DOMAIN_BYTES
        ));
        return std::ptr::null_mut();
    }
    // SAFETY: an anonymous private mapping; pages are backed only when touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        log("rknn_create_mem: out of memory");
        return std::ptr::null_mut();
    }
    s.domain_used[domain] += pages;
    new_mem(s, domain, p.cast(), size as u32, pages as usize, pages, mem_flags::ALLOC_INSIDE)
}

/// `rknn_create_mem`.
#[no_mangle]
pub extern "C" fn rknn_create_mem(ctx: RknnMatmulCtx, size: u32) -> *mut TensorMem {
    alloc(ctx, size as u64)
}

/// `rknn_create_mem2` (2.x).
#[no_mangle]
pub extern "C" fn rknn_create_mem2(ctx: RknnMatmulCtx, size: u64, _flags: u64) -> *mut TensorMem {
    alloc(ctx, size)
}

/// `rknn_create_mem_from_fd`: the caller's mapping `virt` is used from `offset` on (the fd
/// itself is only recorded; what the real library does with `virt` vs `offset` is not
/// documented).
#[no_mangle]
pub extern "C" fn rknn_create_mem_from_fd(
    ctx: RknnMatmulCtx,
    fd: i32,
    virt: *mut c_void,
    size: u32,
    offset: i32,
) -> *mut TensorMem {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get(&ctx) else {
        log("rknn_create_mem_from_fd: invalid context");
        return std::ptr::null_mut();
    };
    let domain = c.domain;
    if fd < 0 || virt.is_null() || size == 0 || offset < 0 {
        log("rknn_create_mem_from_fd: invalid fd, address, size or offset");
        return std::ptr::null_mut();
    }
    let pages = (size as u64).div_ceil(4096) * 4096;
    if s.domain_used[domain] + pages > DOMAIN_BYTES {
        log(&format!("rknn_create_mem_from_fd: iommu domain {domain} is full"));
        return std::ptr::null_mut();
    }
    s.domain_used[domain] += pages;
    let data = virt.cast::<u8>().wrapping_add(offset as usize);
    let mem = new_mem(s, domain, data, size, 0, pages, mem_flags::FROM_FD);
    // SAFETY: just created.
    unsafe {
        (*mem).fd = fd;
        (*mem).offset = offset;
        (*mem).virt_addr = virt;
    }
    mem
}

/// `rknn_create_mem_from_phys`: physical memory cannot be simulated; always NULL.
#[no_mangle]
pub extern "C" fn rknn_create_mem_from_phys(
    _ctx: RknnMatmulCtx,
    _phys: u64,
    _virt: *mut c_void,
    _size: u32,
) -> *mut TensorMem {
    log("rknn-sim: rknn_create_mem_from_phys is not simulated");
    std::ptr::null_mut()
}

/// `rknn_destroy_mem`.
///
/// # Safety
/// `mem` from this library's allocators, not yet destroyed (unknown pointers are rejected).
#[no_mangle]
pub unsafe extern "C" fn rknn_destroy_mem(_ctx: RknnMatmulCtx, mem: *mut TensorMem) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(rec) = s.mems.remove(&(mem as usize)) else {
        log("rknn_destroy_mem: unknown buffer");
        return ret::PARAM_INVALID;
    };
    s.domain_used[rec.domain] -= rec.accounted;
    for c in s.ctxs.values_mut() {
        for b in &mut c.bound {
            if *b == Some(mem as usize) {
                *b = None;
            }
        }
    }
    if rec.mapped > 0 {
        // SAFETY: our own mapping of that length.
        unsafe { libc::munmap(rec.data.cast(), rec.mapped) };
    }
    // SAFETY: created by Box::into_raw in `new_mem`, removed from the table once.
    drop(unsafe { Box::from_raw(mem) });
    ret::SUCC
}

/// `rknn_mem_sync` (2.x): counted; the stand-in's memory is coherent.
#[no_mangle]
pub extern "C" fn rknn_mem_sync(ctx: RknnMatmulCtx, mem: *mut TensorMem, mode: c_int) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    if !s.ctxs.contains_key(&ctx)
        || !s.mems.contains_key(&(mem as usize))
        || !(1..=3).contains(&mode)
    {
        log("rknn_mem_sync: invalid context, buffer or mode");
        return ret::PARAM_INVALID;
    }
    s.syncs += 1;
    ret::SUCC
}

/// `rknn_matmul_set_io_mem`.
///
/// # Safety
/// `attr` points at a `rknn_matmul_tensor_attr` (or is null).
#[no_mangle]
pub unsafe extern "C" fn rknn_matmul_set_io_mem(
    ctx: RknnMatmulCtx,
    mem: *mut TensorMem,
    attr: *mut MatmulTensorAttr,
) -> c_int {
    if attr.is_null() {
        log("rknn_matmul_set_io_mem: null tensor attr");
        return ret::PARAM_INVALID;
    }
    // SAFETY: checked non-null.
    let attr = unsafe { &*attr };
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(rec) = s.mems.get(&(mem as usize)) else {
        log("rknn_matmul_set_io_mem: unknown buffer");
        return ret::PARAM_INVALID;
    };
    let (size, mdom) = (rec.size, rec.domain);
    let Some(c) = s.ctxs.get_mut(&ctx) else {
        log("rknn_matmul_set_io_mem: invalid context");
        return ret::CTX_INVALID;
    };
    let name: Vec<u8> = name_bytes(&attr.name).collect();
    let which = [&c.io.a, &c.io.b, &c.io.c]
        .iter()
        .position(|t| name_bytes(&t.name).eq(name.iter().copied()));
    let Some(which) = which else {
        log("rknn_matmul_set_io_mem: tensor attr is not A, B or C of this context");
        return ret::PARAM_INVALID;
    };
    let want = [c.io.a.size, c.io.b.size, c.io.c.size][which];
    if mdom != c.domain {
        log(&format!(
            "rknn_matmul_set_io_mem: buffer in iommu domain {mdom}, context in {}",
            c.domain
        ));
        return ret::PARAM_INVALID;
    }
    if size < want {
        log(&format!(
            "rknn_matmul_set_io_mem: {} mem size {size} is less than tensor size {want}",
            ["A", "B", "C"][which]
        ));
        return ret::PARAM_INVALID;
    }
    c.bound[which] = Some(mem as usize);
    ret::SUCC
}

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
    let job = {
        let mut g = state();
        let s = g.as_mut().expect("initialised by state()");
        let Some(c) = s.ctxs.get(&ctx) else {
            log("rknn_matmul_run: invalid context");
            return ret::CTX_INVALID;
        };
        let ptr = |i: usize| c.bound[i].and_then(|m| s.mems.get(&m)).map(|r| r.data);
        let (Some(a), Some(b), Some(cm)) = (ptr(0), ptr(1), ptr(2)) else {
            log("rknn_matmul_run: A, B and C must be set with rknn_matmul_set_io_mem first");
            return ret::FAIL;
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
        job
    };
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    // SAFETY: the buffers stay alive while the caller's run is in flight (the API contract:
    // buffers are destroyed only after the runs that use them returned).
    unsafe { compute(&job) };
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    ret::SUCC
}

unsafe fn compute(j: &Job) {
    let bits = j.p.elem().bits();
    let b = unsafe { std::slice::from_raw_parts(j.b, j.layout.byte_len(j.k, j.n)) };
    let a_all = unsafe { std::slice::from_raw_parts(j.a, j.m * j.k * bits / 8) };
    let c_bytes = j.p.acc_bits() as usize / 8;
    let c_all = unsafe { std::slice::from_raw_parts_mut(j.c, j.m * j.n * c_bytes) };
    let mut row = vec![0f32; j.k];
    for m in 0..j.m {
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
        for n in 0..j.n {
            let out = if j.ac_native {
                let c2 = c_c2(j.p) as usize;
                ((n / c2) * j.m + m) * c2 + n % c2
            } else {
                m * j.n + n
            };
            let at = &mut c_all[out * c_bytes..(out + 1) * c_bytes];
            match raw_dot(j.p, j.layout, b, &row, n, j.n) {
                Some(RawSum::F32(v)) => at.copy_from_slice(&v.to_le_bytes()),
                Some(RawSum::I32(v)) => at.copy_from_slice(&v.to_le_bytes()),
                Some(RawSum::I16(v)) => at.copy_from_slice(&v.to_le_bytes()),
                None => {
                    // Out of the accumulator's range: int16 saturates (see the crate docs);
                    // int32 cannot overflow at K ≤ 10240 with int8 operands.
                    let wide = wide_i4_sum(j, b, &row, n);
                    let v = wide.clamp(i16::MIN as i64, i16::MAX as i64) as i16;
                    at.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
}

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

/// `rknn_matmul_destroy`. When the last context goes and `RKNN_SIM_STATS` names a file, the
/// counters are written there as JSON.
#[no_mangle]
pub extern "C" fn rknn_matmul_destroy(ctx: RknnMatmulCtx) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    if s.ctxs.remove(&ctx).is_none() {
        log("rknn_matmul_destroy: invalid context");
        return ret::CTX_INVALID;
    }
    if s.ctxs.is_empty() {
        if let Some(path) = std::env::var_os("RKNN_SIM_STATS") {
            let _ = std::fs::write(path, stats_json(s));
        }
    }
    ret::SUCC
}

fn stats_json(s: &State) -> String {
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
