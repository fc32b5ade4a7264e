//! The Rust source generated for one declaration.
//!
//! `OUT_DIR/npu-model/<Name>.rs` is included by the attribute's expansion next to the
//! struct. Everything sits in one `const _: () = { ... };` block so helper statics cannot clash
//! with the user's names; the block implements associated items on the struct:
//!
//! | item | what |
//! |---|---|
//! | `Name::CONFIG: ModelConfig` | hyperparameters, context length, stop tokens |
//! | `Name::CONTEXT`, `Name::ARENA_BYTES` | the context the arena is sized for, and its exact size ([`npu_runtime::model::arena_bytes`], evaluated by rustc) |
//! | `Name::BLOB_LEN`, `Name::BLOB_SHA256` | size and SHA-256 of the packed weights |
//! | `Name::IOMMU_DOMAINS`, `Name::TENSOR_DOMAINS` | the IOMMU domains the NPU buffers occupy, and each tensor's domain (checked at pack time: no tensor crosses a domain, no more domains than the target has) |
//! | `Name::NPU_BUFFERS` | NPU buffers (file descriptors) the RKNPU backend allocates ([`npu_runtime::rknpu::plan`]) |
//! | `Name::TARGET`, `Name::SCHEME`, `Name::EMBED` | what it was built for and how the blob is linked |
//! | `Name::model() -> &'static Model<'static>` | config + descriptor table + blob + tokenizer tables, all static |
//! | `Name::tokenizer() -> &'static TokenizerTables<'static>` | the tokenizer tables, borrowed from `OUT_DIR/npu-model/<Name>.tok` |
//! | `Name::blob() -> &'static [u8]` | the packed weights, in place |
//!
//! With `embed = "file"` the blob is not in the binary: `model()` and `blob()` give way to
//! `BLOB_FILE`, `blob_path()`, `load()`, `load_from(path)` and `verify_from(path)`
//! ([`blob_file`]), which map the blob file and return errors naming the path.
//!
//! plus const assertions (`const _: () = assert!(..)`): the config is consistent, blob plus
//! arena fit the target's memory window and the host's address space, every shard is
//! 64-byte aligned and inside the blob, the blob's storage is aligned.
//!
//! The text is split in two: [`model_part`] depends only on the packed model (cached with
//! it), [`assemble`] adds what depends on the declaration (name, context, embedding, the
//! names of the included files). The tokenizer tables are not literals: like the blob they
//! are bytes (`<Name>.tok`, from [`OwnedTokenizerTables::to_bytes`]) included into an aligned
//! static, and the generated code only names each slice's offset and length.
//!
//! [`OwnedTokenizerTables::to_bytes`]: crate::tokenizer::OwnedTokenizerTables::to_bytes
//! No absolute path, time or hash-map order reaches the text: files are named through
//! `concat!(env!("OUT_DIR"), ..)`, floats are written as bit patterns.

mod blob_file;

use crate::declare::Embed;
use crate::pack::PackedTable;
use npu_runtime::format::{Layout, BLOB_ALIGN};
use npu_runtime::model::ModelConfig;
use npu_runtime::target::Target;
use std::fmt::Write as _;

/// Version of the generated text's shape (part of the cache key).
pub const CODEGEN_VERSION: u32 = 5;

fn f32_lit(v: f32) -> String {
    format!("f32::from_bits(0x{:08x})", v.to_bits())
}

fn opt_u32(v: Option<u32>) -> String {
    v.map_or_else(|| "None".into(), |v| format!("Some({v})"))
}

/// `ModelConfig` as a struct literal (every field, so a new field is a compile error here
/// rather than a silently defaulted value).
pub fn config_literal(c: &ModelConfig) -> String {
    let m = "::npu_runtime::model";
    // Derived Debug prints exactly the variant's name, which is also its path segment.
    format!(
        "{m}::ModelConfig {{ arch: {m}::Arch::{:?}, n_layers: {}, d_model: {}, n_heads: {}, n_kv_heads: {}, head_dim: {}, ff: {}, vocab: {}, rope_base: {}, rope_dim: {}, rope_style: {m}::RopeStyle::{:?}, rms_eps: {}, qkv_bias: {}, swa_window: {}, swa_layers: 0x{:x}, rope_base_local: {}, query_scale_dim: {}, attn_softcap: {}, final_softcap: {}, tied_output: {}, context_len: {}, eos: {}, eot: {} }}",
        c.arch,
        c.n_layers,
        c.d_model,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim,
        c.ff,
        c.vocab,
        f32_lit(c.rope_base),
        c.rope_dim,
        c.rope_style,
        f32_lit(c.rms_eps),
        c.qkv_bias,
        c.swa_window,
        c.swa_layers,
        f32_lit(c.rope_base_local),
        c.query_scale_dim,
        f32_lit(c.attn_softcap),
        f32_lit(c.final_softcap),
        c.tied_output,
        c.context_len,
        c.eos,
        opt_u32(c.eot),
    )
}

fn layout_literal(l: &Layout) -> String {
    let f = "::npu_runtime::format";
    match *l {
        Layout::Tiled { n_tile, k_tile, elem } => {
            format!("{f}::Layout::Tiled {{ n_tile: {n_tile}, k_tile: {k_tile}, elem: {f}::ElemType::{elem:?} }}")
        }
        Layout::RowMajor { elem } => {
            format!("{f}::Layout::RowMajor {{ elem: {f}::ElemType::{elem:?} }}")
        }
    }
}

/// The part of the generated text that depends only on the packed model: the descriptor
/// table (`static NPU_TENSORS`), the tokenizer tables (`static NPU_TOK` over the bytes of
/// `NPU_TOK_STORE`, through the tokenizer's own emitter) and the `PackedModel` fields. Items
/// are private to the block.
pub fn model_part(
    packed: &PackedTable,
    tokenizer_source: &str,
    tensor_domains: &[u8],
    domains: u32,
) -> String {
    let f = "::npu_runtime::format";
    let mut s = String::new();
    let descs = packed.descs();
    let budget = packed.target.max_buffer;
    let buffers = match packed.target.id {
        npu_runtime::target::TargetId::Cpu => 0,
        _ => npu_runtime::rknpu::plan::buffer_count(&descs, budget),
    };
    let _ = writeln!(s, "const NPU_BUFFERS: usize = {buffers};");
    let _ = writeln!(s, "const NPU_IOMMU_DOMAINS: u32 = {domains};");
    let _ = writeln!(
        s,
        "const NPU_TENSOR_DOMAINS: [u8; {}] = {tensor_domains:?};",
        tensor_domains.len()
    );
    let _ = writeln!(s, "// Descriptor table: {} tensors, blob order.", packed.tensors.len());
    let _ =
        writeln!(s, "static NPU_TENSORS: [{f}::TensorDesc<'static>; {}] = [", packed.tensors.len());
    for t in &packed.tensors {
        let g = t.geom;
        let _ = write!(
            s,
            "    {f}::TensorDesc {{ name: {:?}, kind: {f}::TensorKind::{:?}, scheme: {}, pipeline: {}, layout: {}, geom: {f}::Geometry {{ k: {}, n: {}, k_pad: {}, n_pad: {}, k_align: {}, n_align: {}, k_seg_len: {}, k_segs: {}, cores: {} }}, rotation: {}, shards: &[",
            t.name,
            t.kind,
            t.scheme.map_or_else(|| "None".to_string(), |x| format!("Some({f}::Scheme::{x:?})")),
            t.pipeline.map_or_else(|| "None".to_string(), |x| format!("Some({f}::Pipeline::{x:?})")),
            layout_literal(&t.layout),
            g.k,
            g.n,
            g.k_pad,
            g.n_pad,
            g.k_align,
            g.n_align,
            g.k_seg_len,
            g.k_segs,
            g.cores,
            t.rotation.map_or_else(
                || "None".to_string(),
                |r| format!("Some({f}::Rotation {{ block: {}, seed: 0x{:016x} }})", r.block, r.seed)
            ),
        );
        for (i, sh) in t.shards.iter().enumerate() {
            let _ = write!(
                s,
                "{}{f}::Shard {{ k_seg: {}, core: {}, k0: {}, k_len: {}, n0: {}, n_len: {}, data: {f}::Region {{ offset: {}, len: {} }} }}",
                if i == 0 { "" } else { ", " },
                sh.k_seg,
                sh.core,
                sh.k0,
                sh.k_len,
                sh.n0,
                sh.n_len,
                sh.data.offset,
                sh.data.len
            );
        }
        let _ = writeln!(
            s,
            "], scales: {f}::Region {{ offset: {}, len: {} }} }},",
            t.scales.offset, t.scales.len
        );
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(s, "const NPU_TARGET: ::npu_runtime::target::TargetId = ::npu_runtime::target::TargetId::{:?};", packed.target.id);
    let _ = writeln!(s, "const NPU_SCHEME: {f}::Scheme = {f}::Scheme::{:?};", packed.scheme);
    s.push_str(tokenizer_source);
    if !tokenizer_source.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Where the blob comes from, per embedding mode.
#[derive(Clone, Debug)]
pub enum BlobRef {
    /// `include_bytes!` of `OUT_DIR/npu-model/<file>`.
    Bytes {
        /// File name inside `OUT_DIR/npu-model/`.
        file: String,
    },
    /// An `extern "C"` static linked from a static library.
    Object {
        /// Symbol name.
        symbol: String,
    },
    /// A blob file beside the executable, mapped by the generated `load()`.
    File {
        /// The file's name.
        file_name: String,
    },
}

/// What [`assemble`] needs besides the model part.
#[derive(Clone, Debug)]
pub struct Assembly<'a> {
    /// The struct's name.
    pub name: &'a str,
    /// `path` as written in the attribute (shown in docs; never resolved here).
    pub path: &'a str,
    /// Target profile.
    pub target: &'static Target,
    /// Scheme.
    pub scheme: npu_runtime::format::Scheme,
    /// Config with the declaration's context length.
    pub config: ModelConfig,
    /// Blob length.
    pub blob_len: u64,
    /// Blob SHA-256.
    pub blob_sha256: [u8; 32],
    /// How the blob is linked.
    pub blob: BlobRef,
    /// File name of the tokenizer tables' bytes inside `OUT_DIR/npu-model/`.
    pub tokenizer_file: String,
}

/// The whole generated file for one declaration: header, then one `const _: () = { .. };`
/// block holding the blob's storage, the model part, the tokenizer bytes' storage, the
/// config and `Model` statics, the associated items and the compile-time checks.
pub fn assemble(a: &Assembly<'_>, model_part: &str) -> String {
    let f = "::npu_runtime::format";
    let m = "::npu_runtime::model";
    let embed = match a.blob {
        BlobRef::Bytes { .. } => Embed::Bytes,
        BlobRef::Object { .. } => Embed::Object,
        BlobRef::File { .. } => Embed::File,
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// @generated by npu-build {} for `{}` (path = {:?}, target = {:?}, quant = {:?}, context = {}, embed = {:?}). Do not edit.",
        env!("CARGO_PKG_VERSION"),
        a.name,
        a.path,
        a.target.name,
        a.scheme.name(),
        a.config.context_len,
        embed.name()
    );
    s.push_str("const _: () = {\n");
    if !matches!(a.blob, BlobRef::File { .. }) {
        s.push_str(&blob_storage(a));
    }
    s.push_str(model_part);
    s.push_str(&crate::tokenizer::store_source(
        "NPU_TOK",
        &format!("npu-model/{}", a.tokenizer_file),
    ));
    let _ = writeln!(s, "const NPU_CONFIG: {m}::ModelConfig = {};", config_literal(&a.config));
    if matches!(a.blob, BlobRef::File { .. }) {
        s.push_str(&blob_file::storage(a));
    } else {
        let _ = writeln!(s, "static NPU_MODEL: {m}::Model<'static> = {m}::Model {{ config: NPU_CONFIG, weights: {f}::PackedModel {{ target: NPU_TARGET, scheme: NPU_SCHEME, tensors: &NPU_TENSORS, blob: NPU_BLOB }}, tokenizer: &NPU_TOK }};");
    }
    s.push_str(&associated_items(a, embed));
    s.push_str(&checks(a));
    s.push_str("};\n");
    s
}

/// `NPU_BLOB_LEN` and `static NPU_BLOB: &[u8]` over the blob's storage: an aligned
/// `include_bytes!` or the linked symbol.
fn blob_storage(a: &Assembly<'_>) -> String {
    let f = "::npu_runtime::format";
    let mut s = String::new();
    let _ = writeln!(s, "const NPU_BLOB_LEN: usize = {};", a.blob_len);
    match &a.blob {
        BlobRef::Bytes { file } => {
            let _ = writeln!(s, "#[repr(C, align({BLOB_ALIGN}))]");
            s.push_str("struct NpuAligned<T: ?Sized>(T);\n");
            let _ = writeln!(
                s,
                "static NPU_BLOB_STORE: NpuAligned<[u8; NPU_BLOB_LEN]> = NpuAligned(*::core::include_bytes!(::core::concat!(::core::env!(\"OUT_DIR\"), \"/npu-model/{file}\")));"
            );
            s.push_str("static NPU_BLOB: &[u8] = &NPU_BLOB_STORE.0;\n");
            let _ = writeln!(
                s,
                "const _: () = ::core::assert!(::core::mem::align_of::<NpuAligned<[u8; 0]>>() as u64 >= {f}::BLOB_ALIGN, \"npu-model: the blob's storage is less aligned than npu_runtime::format::BLOB_ALIGN\");"
            );
        }
        BlobRef::File { .. } => {}
        BlobRef::Object { symbol } => {
            s.push_str("unsafe extern \"C\" {\n");
            let _ = writeln!(s, "    #[link_name = \"{symbol}\"]");
            s.push_str("    static NPU_BLOB_STORE: [u8; NPU_BLOB_LEN];\n}\n");
            s.push_str("// SAFETY: the linked symbol is exactly NPU_BLOB_LEN immutable bytes (npu-build wrote it).\n");
            s.push_str("static NPU_BLOB: &[u8] = unsafe { &NPU_BLOB_STORE };\n");
            let _ = writeln!(
                s,
                "#[cfg(target_arch = \"aarch64\")]\nconst _: () = ::core::assert!(NPU_BLOB_LEN as u64 <= {}, \"npu-model: `{}`: the blob is larger than an AArch64 executable can link (+-2 GiB of .eh_frame reach minus room for code); use embed = \\\"file\\\"\");",
                crate::embed::AARCH64_MAX_BLOB,
                a.name
            );
        }
    }
    s
}

/// `impl Name { .. }`: the associated consts and functions of the module docs' table.
fn associated_items(a: &Assembly<'_>, embed: Embed) -> String {
    let f = "::npu_runtime::format";
    let m = "::npu_runtime::model";
    let ctx = a.config.context_len;
    let mut s = String::new();
    // The crate uses what it needs of these; the rest must not warn (a private struct in a
    // binary typically uses only `model()`).
    let _ = writeln!(s, "#[allow(dead_code)]\nimpl {} {{", a.name);
    let mut item = |doc: &str, def: String| {
        let _ = writeln!(s, "    /// {doc}\n    {def}");
    };
    item(
        "Hyperparameters, context length and stop tokens.",
        format!("pub const CONFIG: {m}::ModelConfig = NPU_CONFIG;"),
    );
    item(
        "Tokens of context the arena is sized for (the `context` argument).",
        format!("pub const CONTEXT: u32 = {ctx};"),
    );
    item(
        "Exact bytes of the arena a session needs at [`Self::CONTEXT`].",
        format!("pub const ARENA_BYTES: usize = {m}::arena_bytes(&NPU_CONFIG, {ctx});"),
    );
    item("Bytes of packed weights.", "pub const BLOB_LEN: usize = NPU_BLOB_LEN;".into());
    item(
        "SHA-256 of the packed weights.",
        format!("pub const BLOB_SHA256: [u8; 32] = {:?};", a.blob_sha256),
    );
    item(
        "IOMMU domains the model's NPU buffers occupy (0 for the cpu target).",
        "pub const IOMMU_DOMAINS: u32 = NPU_IOMMU_DOMAINS;".into(),
    );
    item("Per tensor of the descriptor table, the IOMMU domain that holds it (255: not in NPU memory), as the RKNPU backend places it (`npu_runtime::rknpu::plan`).", "pub const TENSOR_DOMAINS: &'static [u8] = &NPU_TENSOR_DOMAINS;".into());
    item("NPU buffers (dma-buf file descriptors) the RKNPU backend allocates for this model: `RLIMIT_NOFILE` must exceed it (0 for the cpu target).", "pub const NPU_BUFFERS: usize = NPU_BUFFERS;".into());
    item(
        "Target profile the weights are packed for.",
        "pub const TARGET: ::npu_runtime::target::TargetId = NPU_TARGET;".into(),
    );
    item("Quantization scheme.", format!("pub const SCHEME: {f}::Scheme = NPU_SCHEME;"));
    item(
        "How the blob reaches the program: `\"bytes\"`, `\"object\"` or `\"file\"`.",
        format!("pub const EMBED: &'static str = {:?};", embed.name()),
    );
    item("The tokenizer tables.", "pub fn tokenizer() -> &'static ::npu_runtime::tokenizer::TokenizerTables<'static> { &NPU_TOK }".into());
    if let BlobRef::File { file_name } = &a.blob {
        blob_file::items(file_name, item);
    } else {
        item(
            "The model: config, descriptor table and blob, all static.",
            format!("pub fn model() -> &'static {m}::Model<'static> {{ &NPU_MODEL }}"),
        );
        item("The packed weights, in place.", "pub fn blob() -> &'static [u8] { NPU_BLOB }".into());
    }
    s.push_str("}\n");
    s
}

/// Compile-time checks, evaluated by rustc for the real compilation target: the config is
/// consistent, blob plus arena fit the target's window and the address space, every shard is
/// aligned and inside the blob.
fn checks(a: &Assembly<'_>) -> String {
    let m = "::npu_runtime::model";
    let (name, ctx, window) = (a.name, a.config.context_len, a.target.npu_memory());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "const _: () = ::core::assert!(NPU_CONFIG.invalid().is_none(), \"npu-model: `{name}`: the generated config is inconsistent (ModelConfig::invalid)\");"
    );
    let _ = writeln!(
        s,
        "const _: () = ::core::assert!((NPU_BLOB_LEN as u128) + ({m}::arena_bytes(&NPU_CONFIG, {ctx}) as u128) <= {window}u128, \"npu-model: `{name}`: packed weights plus the arena for context {ctx} exceed the memory target `{}` can address ({} bytes in {} IOMMU domains); lower `context` or choose a smaller quant\");",
        a.target.name,
        window,
        a.target.iommu_domains
    );
    let _ = writeln!(
        s,
        "const _: () = ::core::assert!((NPU_BLOB_LEN as u128) + ({m}::arena_bytes(&NPU_CONFIG, {ctx}) as u128) <= (isize::MAX as u128), \"npu-model: `{name}`: packed weights plus the arena exceed this target's address space\");"
    );
    s.push_str(LAYOUT_CHECK);
    let _ = writeln!(
        s,
        "const _: () = ::core::assert!(npu_layout_ok(&NPU_TENSORS, NPU_BLOB_LEN as u64), \"npu-model: `{name}`: a shard is not {BLOB_ALIGN}-byte aligned or lies outside the blob\");"
    );
    s
}

// A const fn over the descriptor table, so rustc itself checks alignment and bounds of what
// it links, whatever produced the table.
const LAYOUT_CHECK: &str = "const fn npu_layout_ok(ts: &[::npu_runtime::format::TensorDesc<'_>], blob_len: u64) -> bool {
    let a = ::npu_runtime::format::BLOB_ALIGN;
    let mut i = 0;
    while i < ts.len() {
        let t = &ts[i];
        let mut j = 0;
        while j < t.shards.len() {
            let r = t.shards[j].data;
            if !r.offset.is_multiple_of(a) || r.offset + r.len > blob_len {
                return false;
            }
            j += 1;
        }
        if t.scales.len > 0 && (!t.scales.offset.is_multiple_of(4) || t.scales.offset + t.scales.len > blob_len) {
            return false;
        }
        i += 1;
    }
    true
}
";

/// The generated file for a declaration that failed: a `compile_error!` with the message, so
/// the build fails even if something includes the file without the attribute's status check.
pub fn error_file(name: &str, message: &str) -> String {
    format!("// @generated by npu-build for `{name}`: this declaration failed.\n::core::compile_error!({message:?});\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use npu_runtime::model::Arch;

    #[test]
    fn file_mode_maps_instead_of_linking() {
        let config = ModelConfig::new(Arch::Llama, 1, 64, 2, 1, 32, 128, 4, 1e4, 1e-5, true, 64, 3);
        let a = Assembly {
            name: "Big",
            path: "big.gguf",
            target: Target::by_name("cpu").unwrap(),
            scheme: npu_runtime::format::Scheme::Int8,
            config,
            blob_len: 5 << 30,
            blob_sha256: [1; 32],
            blob: BlobRef::File { file_name: "app-Big.npublob".into() },
            tokenizer_file: "Big.tok".into(),
        };
        let code = assemble(&a, "");
        for want in [
            "const NPU_BLOB_LEN: usize = 5368709120;",
            "::npu_runtime::blob_file::Header::new(NPU_BLOB_LEN as u64, [1, 1,",
            "pub const BLOB_FILE: &'static str = \"app-Big.npublob\";",
            "pub fn load() -> ::core::result::Result<&'static ::npu_runtime::model::Model<'static>,",
            "pub fn load_from(path: impl ::core::convert::AsRef<::std::path::Path>)",
            "pub fn verify_from(",
            "pub const EMBED: &'static str = \"file\";",
        ] {
            assert!(code.contains(want), "missing {want:?}");
        }
        for absent in ["NPU_BLOB_STORE", "extern \"C\"", "pub fn model()", "pub fn blob()"] {
            assert!(!code.contains(absent), "unexpected {absent:?}");
        }
    }

    #[test]
    fn config_literal_writes_float_bits() {
        let mut c = ModelConfig::new(
            Arch::Qwen2,
            24,
            896,
            14,
            2,
            64,
            4864,
            151936,
            1e6,
            1e-6,
            false,
            512,
            151645,
        );
        c.eot = Some(151645);
        c.rope_dim = 32;
        assert!(config_literal(&c).contains("rope_base: f32::from_bits(0x49742400)"));
    }
}
