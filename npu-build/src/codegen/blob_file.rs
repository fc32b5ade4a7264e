//! The generated items of an `embed = "file"` declaration: the blob is not in the binary, so
//! instead of a `static` blob and `model()`, the header the file must carry and the functions
//! that map it (`npu_runtime::blob_file`, feature `std` of npu-runtime).

use super::Assembly;
use std::fmt::Write as _;

const BF: &str = "::npu_runtime::blob_file";

/// `NPU_BLOB_HEADER` and `npu_model_over`, the `Model` over a mapped blob.
pub fn storage(a: &Assembly<'_>) -> String {
    let (f, m) = ("::npu_runtime::format", "::npu_runtime::model");
    let mut s = String::new();
    let _ = writeln!(s, "const NPU_BLOB_LEN: usize = {};", a.blob_len);
    let _ = writeln!(
        s,
        "const NPU_BLOB_HEADER: {BF}::Header = {BF}::Header::new(NPU_BLOB_LEN as u64, {:?});",
        a.blob_sha256
    );
    let _ = writeln!(
        s,
        "fn npu_model_over(blob: &'static [u8]) -> {m}::Model<'static> {{ {m}::Model {{ config: NPU_CONFIG, weights: {f}::PackedModel {{ target: NPU_TARGET, scheme: NPU_SCHEME, tensors: &NPU_TENSORS, blob }}, tokenizer: &NPU_TOK }} }}"
    );
    s
}

/// The associated items that replace `model()` and `blob()`.
pub fn items(file_name: &str, mut item: impl FnMut(&str, String)) {
    let m = "::npu_runtime::model";
    let err = format!("{BF}::load::BlobFileError");
    item(
        "File name of the blob file, which the build writes beside the executable.",
        format!("pub const BLOB_FILE: &'static str = {file_name:?};"),
    );
    item(
        "Where [`Self::load`] looks for the blob file: beside the running executable (or in the profile directory for cargo's test and example binaries).",
        format!("pub fn blob_path() -> ::core::result::Result<::std::path::PathBuf, {err}> {{ {BF}::load::beside_executable(Self::BLOB_FILE) }}"),
    );
    item(
        "The model over the blob file at [`Self::blob_path`], mapped on the first call (header and size checked, nothing parsed) and kept for the rest of the process.",
        format!("pub fn load() -> ::core::result::Result<&'static {m}::Model<'static>, {err}> {{ static LOADED: ::std::sync::OnceLock<{m}::Model<'static>> = ::std::sync::OnceLock::new(); if let ::core::option::Option::Some(m) = LOADED.get() {{ return ::core::result::Result::Ok(m); }} let m = Self::load_from(Self::blob_path()?)?; ::core::result::Result::Ok(LOADED.get_or_init(|| m)) }}"),
    );
    item(
        "The model over the blob file at `path`: its header must match [`Self::BLOB_LEN`] and [`Self::BLOB_SHA256`] and its size the blob's; the mapping lasts for the rest of the process.",
        format!("pub fn load_from(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<{m}::Model<'static>, {err}> {{ let f = {BF}::load::BlobFile::open(path, &NPU_BLOB_HEADER)?; ::core::result::Result::Ok(npu_model_over(f.into_static())) }}"),
    );
    item(
        "Checks the blob file at `path` in full: header, size and the SHA-256 of every byte.",
        format!("pub fn verify_from(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), {err}> {{ {BF}::load::BlobFile::open(path, &NPU_BLOB_HEADER)?.verify() }}"),
    );
}
