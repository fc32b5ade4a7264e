//! Per pipeline: the SDK's matmul type number, the tensor types of A/B and C, and the inner
//! blocks of A and C in their native layouts.

use npu_runtime::format::Pipeline;
use npu_runtime::rknpu::ffi;

/// The pipeline of an SDK matmul type (1, 2 or 10).
pub(crate) fn pipeline_of(t: u32) -> Option<Pipeline> {
    match t {
        1 => Some(Pipeline::F16F16F32),
        2 => Some(Pipeline::I8I8I32),
        10 => Some(Pipeline::I4I4I16),
        _ => None,
    }
}

/// Tensor type of A and B.
pub(crate) fn elem_type(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => ffi::tensor_type::FLOAT16,
        Pipeline::I8I8I32 => ffi::tensor_type::INT8,
        Pipeline::I4I4I16 => ffi::tensor_type::INT4,
    }
}

/// Tensor type of C.
pub(crate) fn out_type(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => ffi::tensor_type::FLOAT32,
        Pipeline::I8I8I32 => ffi::tensor_type::INT32,
        Pipeline::I4I4I16 => ffi::tensor_type::INT16,
    }
}

/// A's native inner block (C2 of the feature cube).
pub(crate) fn a_c2(p: Pipeline) -> u32 {
    match p {
        Pipeline::F16F16F32 => 8,
        Pipeline::I8I8I32 => 16,
        Pipeline::I4I4I16 => 32,
    }
}

/// C's native inner block: 8 for int16, 4 for 32-bit outputs.
pub(crate) fn c_c2(p: Pipeline) -> u32 {
    if p.acc_bits() == 16 {
        8
    } else {
        4
    }
}
