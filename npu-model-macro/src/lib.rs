//! The `#[npu_model]` attribute (see the workspace README).
