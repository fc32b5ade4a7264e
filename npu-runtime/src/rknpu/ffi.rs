//! The C ABI of librknnrt's matmul API, declared by hand from the measured table in the
//! project's rknpu brief (§9: `sizeof` / `offsetof` of the v2.3.2 headers on aarch64, and the
//! v1.5.2 differences). No SDK header is copied; every size and offset is asserted below so a
//! typo cannot compile. Shared by the backend (callers) and the `rknpu-sim` stand-in (callee).

use core::ffi::{c_char, c_int, c_void};
use core::mem::{offset_of, size_of};

/// `rknn_matmul_ctx` (= `rknn_context`): u64 on 64-bit builds.
pub type RknnMatmulCtx = u64;

/// `RKNN_MAX_NAME_LEN`.
pub const MAX_NAME_LEN: usize = 256;
/// `RKNN_MAX_DIMS`.
pub const MAX_DIMS: usize = 16;

/// `rknn_matmul_info` (v2.3.2, 64 bytes). The v1.5.2 library reads only the first 24 bytes
/// (M, K, N, type, i32 native_layout at 16, i32 perf_layout at 20): with the quant-type
/// fields zero, the i16 layout fields overlay the old i32 ones.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MatmulInfo {
    /// Rows of A and C.
    pub m: i32,
    /// Reduction length.
    pub k: i32,
    /// Columns of B and C.
    pub n: i32,
    /// `rknn_matmul_type`.
    pub type_: u32,
    /// `rknn_matmul_layout` of B.
    pub b_layout: i16,
    /// `rknn_matmul_quant_type` of B.
    pub b_quant_type: i16,
    /// `rknn_matmul_layout` of A and C.
    pub ac_layout: i16,
    /// Quant type of A and C.
    pub ac_quant_type: i16,
    /// IOMMU domain of the context and of every buffer bound to it.
    pub iommu_domain_id: i32,
    /// Group size of per-group quantization.
    pub group_size: i16,
    /// Must be zero.
    pub reserved: [i8; 34],
}

impl MatmulInfo {
    /// An all-zero info (the SDK says: always memset to 0).
    pub const ZERO: MatmulInfo = MatmulInfo {
        m: 0,
        k: 0,
        n: 0,
        type_: 0,
        b_layout: 0,
        b_quant_type: 0,
        ac_layout: 0,
        ac_quant_type: 0,
        iommu_domain_id: 0,
        group_size: 0,
        reserved: [0; 34],
    };
}

/// `rknn_matmul_tensor_attr` (332 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MatmulTensorAttr {
    /// NUL-terminated name.
    pub name: [c_char; MAX_NAME_LEN],
    /// Dimensions used.
    pub n_dims: u32,
    /// Dimensions (native layouts: see the brief §1.2).
    pub dims: [u32; MAX_DIMS],
    /// Bytes of the tensor.
    pub size: u32,
    /// `rknn_tensor_type`.
    pub type_: u32,
}

impl MatmulTensorAttr {
    /// All zero.
    pub const ZERO: MatmulTensorAttr = MatmulTensorAttr {
        name: [0; MAX_NAME_LEN],
        n_dims: 0,
        dims: [0; MAX_DIMS],
        size: 0,
        type_: 0,
    };
    /// The used dimensions.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..(self.n_dims as usize).min(MAX_DIMS)]
    }
}

/// `rknn_matmul_io_attr` (996 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MatmulIoAttr {
    /// A (M × K).
    pub a: MatmulTensorAttr,
    /// B (K × N).
    pub b: MatmulTensorAttr,
    /// C (M × N).
    pub c: MatmulTensorAttr,
}

impl MatmulIoAttr {
    /// All zero.
    pub const ZERO: MatmulIoAttr = MatmulIoAttr {
        a: MatmulTensorAttr::ZERO,
        b: MatmulTensorAttr::ZERO,
        c: MatmulTensorAttr::ZERO,
    };
}

/// `rknn_tensor_mem` (40 bytes). `size` is u32 and `offset` i32: one buffer < 4 GiB.
#[repr(C)]
#[derive(Debug)]
pub struct TensorMem {
    /// CPU address.
    pub virt_addr: *mut c_void,
    /// Physical (NPU) address.
    pub phys_addr: u64,
    /// dma-buf fd.
    pub fd: i32,
    /// Offset into the fd.
    pub offset: i32,
    /// Bytes.
    pub size: u32,
    /// `rknn_tensor_mem_flags`.
    pub flags: u32,
    /// Library-private.
    pub priv_data: *mut c_void,
}

/// `rknn_quant_params` (288 bytes; 2.x only, not called by the backend).
#[repr(C)]
#[derive(Debug)]
pub struct QuantParams {
    /// Tensor name.
    pub name: [c_char; MAX_NAME_LEN],
    /// Scales.
    pub scale: *mut f32,
    /// Scale count.
    pub scale_len: i32,
    /// Zero points.
    pub zp: *mut i32,
    /// Zero point count.
    pub zp_len: i32,
}

/// `rknn_matmul_shape` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MatmulShape {
    /// M.
    pub m: i32,
    /// K.
    pub k: i32,
    /// N.
    pub n: i32,
}

// The measured ABI (aarch64, v2.3.2 headers). Offsets are target-independent here because
// every field before a pointer is 4- or 8-byte sized; pointer-carrying structs are only
// checked on 64-bit targets.
const _: () = {
    assert!(size_of::<MatmulInfo>() == 64 && core::mem::align_of::<MatmulInfo>() == 4);
    assert!(offset_of!(MatmulInfo, m) == 0 && offset_of!(MatmulInfo, k) == 4);
    assert!(offset_of!(MatmulInfo, n) == 8 && offset_of!(MatmulInfo, type_) == 12);
    assert!(offset_of!(MatmulInfo, b_layout) == 16 && offset_of!(MatmulInfo, b_quant_type) == 18);
    assert!(offset_of!(MatmulInfo, ac_layout) == 20 && offset_of!(MatmulInfo, ac_quant_type) == 22);
    assert!(offset_of!(MatmulInfo, iommu_domain_id) == 24);
    assert!(offset_of!(MatmulInfo, group_size) == 28 && offset_of!(MatmulInfo, reserved) == 30);
    assert!(size_of::<MatmulTensorAttr>() == 332 && core::mem::align_of::<MatmulTensorAttr>() == 4);
    assert!(offset_of!(MatmulTensorAttr, name) == 0 && offset_of!(MatmulTensorAttr, n_dims) == 256);
    assert!(offset_of!(MatmulTensorAttr, dims) == 260 && offset_of!(MatmulTensorAttr, size) == 324);
    assert!(offset_of!(MatmulTensorAttr, type_) == 328);
    assert!(size_of::<MatmulIoAttr>() == 996 && core::mem::align_of::<MatmulIoAttr>() == 4);
    assert!(offset_of!(MatmulIoAttr, a) == 0 && offset_of!(MatmulIoAttr, b) == 332);
    assert!(offset_of!(MatmulIoAttr, c) == 664);
    assert!(size_of::<MatmulShape>() == 12);
    assert!(offset_of!(MatmulShape, k) == 4 && offset_of!(MatmulShape, n) == 8);
};
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<TensorMem>() == 40 && core::mem::align_of::<TensorMem>() == 8);
    assert!(offset_of!(TensorMem, virt_addr) == 0 && offset_of!(TensorMem, phys_addr) == 8);
    assert!(offset_of!(TensorMem, fd) == 16 && offset_of!(TensorMem, offset) == 20);
    assert!(offset_of!(TensorMem, size) == 24 && offset_of!(TensorMem, flags) == 28);
    assert!(offset_of!(TensorMem, priv_data) == 32);
    assert!(size_of::<QuantParams>() == 288 && core::mem::align_of::<QuantParams>() == 8);
    assert!(offset_of!(QuantParams, scale) == 256 && offset_of!(QuantParams, scale_len) == 264);
    assert!(offset_of!(QuantParams, zp) == 272 && offset_of!(QuantParams, zp_len) == 280);
};

/// `rknn_matmul_layout`.
pub mod layout {
    /// Row-major.
    pub const NORM: i16 = 0;
    /// Native (tiled).
    pub const NATIVE: i16 = 1;
    /// B transposed (N × K), 2.x.
    pub const TP_NORM: i16 = 2;
}

/// `rknn_tensor_type`.
pub mod tensor_type {
    /// float32.
    pub const FLOAT32: u32 = 0;
    /// float16.
    pub const FLOAT16: u32 = 1;
    /// int8.
    pub const INT8: u32 = 2;
    /// int16.
    pub const INT16: u32 = 4;
    /// int32.
    pub const INT32: u32 = 6;
    /// int4.
    pub const INT4: u32 = 10;
}

/// `rknn_core_mask`.
pub mod core_mask {
    /// Let the runtime pick.
    pub const AUTO: u32 = 0;
    /// Core 0.
    pub const CORE_0: u32 = 1;
    /// Core 1.
    pub const CORE_1: u32 = 2;
    /// Core 2.
    pub const CORE_2: u32 = 4;
    /// Cores 0 and 1 (reported not to work for matmul).
    pub const CORE_0_1: u32 = 3;
    /// All three (reported not to work for matmul).
    pub const CORE_0_1_2: u32 = 7;
    /// Every core.
    pub const CORE_ALL: u32 = 0xffff;
}

/// `rknn_tensor_mem_flags`.
pub mod mem_flags {
    /// Allocated by the library.
    pub const ALLOC_INSIDE: u32 = 1;
    /// Imported from a dma-buf fd.
    pub const FROM_FD: u32 = 2;
    /// Imported from a physical address.
    pub const FROM_PHYS: u32 = 3;
}

/// `rknn_mem_sync_mode` (2.x).
pub mod sync_mode {
    use core::ffi::c_int;
    /// CPU writes → device.
    pub const TO_DEVICE: c_int = 1;
    /// Device writes → CPU.
    pub const FROM_DEVICE: c_int = 2;
    /// Both.
    pub const BIDIRECTIONAL: c_int = 3;
}

/// Return codes (`RKNN_SUCC`, `RKNN_ERR_*`).
pub mod ret {
    /// Success.
    pub const SUCC: i32 = 0;
    /// Generic failure.
    pub const FAIL: i32 = -1;
    /// Timeout.
    pub const TIMEOUT: i32 = -2;
    /// No usable NPU device.
    pub const DEVICE_UNAVAILABLE: i32 = -3;
    /// Out of memory.
    pub const MALLOC_FAIL: i32 = -4;
    /// Bad parameter.
    pub const PARAM_INVALID: i32 = -5;
    /// Bad model.
    pub const MODEL_INVALID: i32 = -6;
    /// Bad context.
    pub const CTX_INVALID: i32 = -7;
    /// Bad input.
    pub const INPUT_INVALID: i32 = -8;
    /// Bad output.
    pub const OUTPUT_INVALID: i32 = -9;
    /// Device does not match the model.
    pub const DEVICE_UNMATCH: i32 = -10;

    /// The code's name.
    pub fn name(code: i32) -> &'static str {
        match code {
            SUCC => "RKNN_SUCC",
            FAIL => "RKNN_ERR_FAIL",
            TIMEOUT => "RKNN_ERR_TIMEOUT",
            DEVICE_UNAVAILABLE => "RKNN_ERR_DEVICE_UNAVAILABLE",
            MALLOC_FAIL => "RKNN_ERR_MALLOC_FAIL",
            PARAM_INVALID => "RKNN_ERR_PARAM_INVALID",
            MODEL_INVALID => "RKNN_ERR_MODEL_INVALID",
            CTX_INVALID => "RKNN_ERR_CTX_INVALID",
            INPUT_INVALID => "RKNN_ERR_INPUT_INVALID",
            OUTPUT_INVALID => "RKNN_ERR_OUTPUT_INVALID",
            DEVICE_UNMATCH => "RKNN_ERR_DEVICE_UNMATCH",
            _ => "unknown code",
        }
    }
}

/// `rknn_matmul_create(ctx*, info*, io_attr*) -> int`.
pub type FnCreate =
    unsafe extern "C" fn(*mut RknnMatmulCtx, *mut MatmulInfo, *mut MatmulIoAttr) -> c_int;
/// `rknn_matmul_set_io_mem(ctx, mem*, attr*) -> int`.
pub type FnSetIoMem =
    unsafe extern "C" fn(RknnMatmulCtx, *mut TensorMem, *mut MatmulTensorAttr) -> c_int;
/// `rknn_matmul_set_core_mask(ctx, mask) -> int`.
pub type FnSetCoreMask = unsafe extern "C" fn(RknnMatmulCtx, u32) -> c_int;
/// `rknn_matmul_run(ctx) -> int` / `rknn_matmul_destroy(ctx) -> int`.
pub type FnCtx = unsafe extern "C" fn(RknnMatmulCtx) -> c_int;
/// `rknn_create_mem(ctx, u32 size) -> rknn_tensor_mem*`.
pub type FnCreateMem = unsafe extern "C" fn(RknnMatmulCtx, u32) -> *mut TensorMem;
/// `rknn_create_mem_from_fd(ctx, fd, virt, size, offset) -> rknn_tensor_mem*`.
pub type FnCreateMemFromFd =
    unsafe extern "C" fn(RknnMatmulCtx, i32, *mut c_void, u32, i32) -> *mut TensorMem;
/// `rknn_create_mem_from_phys(ctx, phys, virt, size) -> rknn_tensor_mem*`.
pub type FnCreateMemFromPhys =
    unsafe extern "C" fn(RknnMatmulCtx, u64, *mut c_void, u32) -> *mut TensorMem;
/// `rknn_destroy_mem(ctx, mem*) -> int`.
pub type FnDestroyMem = unsafe extern "C" fn(RknnMatmulCtx, *mut TensorMem) -> c_int;
/// `rknn_mem_sync(ctx, mem*, mode) -> int` (2.x).
pub type FnMemSync = unsafe extern "C" fn(RknnMatmulCtx, *mut TensorMem, c_int) -> c_int;
/// `rknn_create_mem2(ctx, u64 size, u64 flags) -> rknn_tensor_mem*` (2.x).
pub type FnCreateMem2 = unsafe extern "C" fn(RknnMatmulCtx, u64, u64) -> *mut TensorMem;

/// The bytes of a NUL-terminated name.
pub fn name_bytes(name: &[c_char; MAX_NAME_LEN]) -> impl Iterator<Item = u8> + '_ {
    // c_char is i8 or u8 by platform: its one byte either way.
    name.iter().map(|&c| c.to_ne_bytes()[0]).take_while(|&b| b != 0)
}

/// Writes `s` as a NUL-terminated name (truncated to fit).
pub fn set_name(name: &mut [c_char; MAX_NAME_LEN], s: &str) {
    *name = [0; MAX_NAME_LEN];
    for (d, &b) in name.iter_mut().zip(s.as_bytes().iter().take(MAX_NAME_LEN - 1)) {
        *d = c_char::from_ne_bytes([b]);
    }
}
