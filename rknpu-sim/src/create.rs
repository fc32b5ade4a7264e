//! Contexts: `rknn_matmul_create` (the info checked against the chip's and the library
//! version's limits, the io attributes in their native dims, the context registered),
//! `rknn_matmul_set_core_mask` and `rknn_matmul_destroy`.

use crate::dtype::{a_c2, c_c2, elem_type, out_type, pipeline_of};
use crate::introspect::stats_json;
use crate::state::{chip, log, state, v1, Ctx, DOMAINS};
use npu_runtime::format::{Layout, Pipeline};
use npu_runtime::rknpu::ffi::{self, *};
use npu_runtime::target::{PipelineSpec, Target, TargetId};
use std::ffi::c_int;

/// A create's info once checked: what its io attributes and its context are built from.
struct Request {
    spec: &'static PipelineSpec,
    /// NPU cores of the chip.
    cores: u32,
    m: u32,
    k: u32,
    n: u32,
    /// A and C in their native layouts (`ac_layout` 1) instead of row-major.
    ac_native: bool,
    domain: usize,
}

/// `rknn_matmul_create`: the info checked, the io attributes written, the context registered.
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
    let req = match check_info(&info) {
        Ok(req) => req,
        Err(code) => return code,
    };
    let attrs = match io_attrs(&req) {
        Ok(attrs) => attrs,
        Err(code) => return code,
    };
    // SAFETY: checked non-null.
    unsafe { *io = attrs };
    let id = register(&req, attrs);
    // SAFETY: checked non-null.
    unsafe { *ctx = id };
    ret::SUCC
}

/// The info against the selected chip and library version, in the order the checks log: the
/// type, the shape, the layouts and the IOMMU domain.
fn check_info(info: &MatmulInfo) -> Result<Request, c_int> {
    let (chip, _) = chip();
    let target = Target::get(chip);
    let old = v1();
    let spec = pipeline_of(info.type_)
        .filter(|p| !old || *p != Pipeline::I4I4I16)
        .and_then(|p| target.spec(p));
    let Some(spec) = spec else {
        log(&format!("meet unsupported matmul dtype: {}", info.type_));
        return Err(ret::PARAM_INVALID);
    };
    let (m, k, n) = check_shape(info, spec, chip, old)?;
    let (ac_native, domain) = check_layouts(info, old)?;
    Ok(Request { spec, cores: target.cores, m, k, n, ac_native, domain })
}

/// M, K, N positive, K and N aligned for the pipeline, K within the limit for native B.
fn check_shape(
    info: &MatmulInfo,
    spec: &PipelineSpec,
    chip: TargetId,
    old: bool,
) -> Result<(u32, u32, u32), c_int> {
    let (m, k, n) = (info.m, info.k, info.n);
    if m <= 0 || k <= 0 || n <= 0 {
        log(&format!("invalid matmul shape M={m} K={k} N={n}"));
        return Err(ret::PARAM_INVALID);
    }
    let (m, k, n) = (m as u32, k as u32, n as u32);
    if k % spec.k_align != 0 {
        log(&format!("matmul K must be align with {}!", spec.k_align));
        return Err(ret::PARAM_INVALID);
    }
    if n % spec.n_align != 0 {
        log(&format!("matmul N must be align with {}!", spec.n_align));
        return Err(ret::PARAM_INVALID);
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
        return Err(ret::PARAM_INVALID);
    }
    Ok((m, k, n))
}

/// B native, A/C row-major or native, the domain id in range: (A/C native, domain).
fn check_layouts(info: &MatmulInfo, old: bool) -> Result<(bool, usize), c_int> {
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
            return Err(ret::PARAM_INVALID);
        }
        (info.b_layout as i32, info.ac_layout as i32, info.iommu_domain_id)
    };
    if b_layout != ffi::layout::NATIVE as i32 {
        log(&format!("rknn-sim: B layout {b_layout} not simulated (native B only)"));
        return Err(ret::PARAM_INVALID);
    }
    if ac_layout != 0 && ac_layout != 1 {
        log(&format!("invalid AC_layout: {ac_layout}"));
        return Err(ret::PARAM_INVALID);
    }
    if domain < 0 || domain as usize >= DOMAINS {
        log(&format!("invalid iommu_domain_id: {domain}"));
        return Err(ret::PARAM_INVALID);
    }
    Ok((ac_layout == 1, domain as usize))
}

/// The io attributes: A `[M, K]` or native `(K/a2, M, a2)`, B native `(N/nt, K/kt, nt, kt)`,
/// C `[M, N]` or native `(N/c2, M, c2)`; each tensor under 4 GiB.
fn io_attrs(r: &Request) -> Result<MatmulIoAttr, c_int> {
    let p = r.spec.pipeline;
    let Layout::Tiled { n_tile, k_tile, .. } = r.spec.layout else {
        return Err(ret::FAIL);
    };
    let (m, k, n) = (r.m, r.k, r.n);
    let bits = p.elem().bits() as u64;
    let a_size = m as u64 * k as u64 * bits / 8;
    let b_size = k as u64 * n as u64 * bits / 8;
    let c_size = m as u64 * n as u64 * p.acc_bits() as u64 / 8;
    if b_size > u32::MAX as u64 || a_size > u32::MAX as u64 || c_size > u32::MAX as u64 {
        log("matmul tensor larger than 4 GiB");
        return Err(ret::PARAM_INVALID);
    }
    let a = if r.ac_native {
        attr("A", &[k / a_c2(p), m, a_c2(p)], a_size, elem_type(p))
    } else {
        attr("A", &[m, k], a_size, elem_type(p))
    };
    let b = attr("B", &[n / n_tile, k / k_tile, n_tile, k_tile], b_size, elem_type(p));
    let c = if r.ac_native {
        attr("C", &[n / c_c2(p), m, c_c2(p)], c_size, out_type(p))
    } else {
        attr("C", &[m, n], c_size, out_type(p))
    };
    Ok(MatmulIoAttr { a, b, c })
}

/// One tensor's attribute: its name, dims, byte size and type.
fn attr(name: &str, dims: &[u32], size: u64, type_: u32) -> MatmulTensorAttr {
    let mut a = MatmulTensorAttr::ZERO;
    set_name(&mut a.name, name);
    a.n_dims = dims.len() as u32;
    a.dims[..dims.len()].copy_from_slice(dims);
    a.size = size as u32;
    a.type_ = type_;
    a
}

/// The context entered into the state under the next id, running on core 0 with no buffers
/// bound; returns the id.
fn register(r: &Request, io: MatmulIoAttr) -> RknnMatmulCtx {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let id = s.next_ctx;
    s.next_ctx += 1;
    s.ctxs.insert(
        id,
        Ctx {
            pipeline: r.spec.pipeline,
            layout: r.spec.layout,
            m: r.m,
            k: r.k,
            n: r.n,
            ac_native: r.ac_native,
            domain: r.domain,
            cores: r.cores,
            core: 0,
            io,
            bound: [None; 3],
        },
    );
    id
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
