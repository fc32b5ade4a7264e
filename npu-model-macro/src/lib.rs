#![doc = include_str!("../README.md")]
//!
//! ## Details
//!
//! ```ignore
//! use npu_model_macro::npu_model;
//!
//! #[npu_model(path = "models/smollm2-135m-instruct-q4_1.gguf", target = "rk3588", quant = "int8")]
//! pub struct SmolLm;
//!
//! fn main() {
//!     let model: &'static npu_runtime::model::Model<'static> = SmolLm::model();
//!     static mut ARENA: [u8; SmolLm::ARENA_BYTES] = [0; SmolLm::ARENA_BYTES];
//!     // ... npu_runtime::model::Session::new(*model, backend, arena) ...
//! }
//! ```
//!
//! with a build script that runs npu-build:
//!
//! ```ignore
//! // build.rs                          # Cargo.toml
//! fn main() {                          # [dependencies]
//!     npu_build::compile().unwrap();   # npu-runtime = "0.1"
//! }                                    # npu-model-macro = "0.1"
//!                                      # [build-dependencies]
//!                                      # npu-build = "0.1"
//!                                      # [profile.release.build-override]
//!                                      # opt-level = 3
//! ```
//!
//! (cargo compiles build dependencies without optimization by default, even in release
//! builds; the quantizer then runs about five times slower.)
//!
//! The build script finds every `#[npu_model]` in `src/` (from `lib.rs`, `main.rs` and
//! `src/bin/*` through `mod` items), reads the GGUF, quantizes and packs it for the target
//! and writes Rust source into `OUT_DIR`. The attribute itself never reads the model (cargo
//! does not track files a proc macro reads): it checks the arguments, and expands to the
//! struct plus `include!(concat!(env!("OUT_DIR"), "/npu-model/<Name>.rs"))`, which gives the
//! struct associated items, all computed at build time:
//!
//! | item | what |
//! |---|---|
//! | `CONFIG: ModelConfig` | hyperparameters, context length, stop tokens |
//! | `CONTEXT: u32`, `ARENA_BYTES: usize` | the context the arena is sized for, and the arena's exact size |
//! | `BLOB_LEN: usize`, `BLOB_SHA256: [u8; 32]` | size and digest of the packed weights |
//! | `TARGET`, `SCHEME`, `EMBED` | what the weights were packed for, how they are linked |
//! | `IOMMU_DOMAINS`, `TENSOR_DOMAINS` | the NPU memory plan: domains used, each tensor's domain |
//! | `model() -> &'static Model<'static>` | config + descriptor table + weights, nothing parsed at startup |
//! | `tokenizer() -> &'static TokenizerTables<'static>` | the tokenizer tables |
//! | `blob() -> &'static [u8]` | the packed weights, in place (64-byte aligned) |
//!
//! and compile-time checks (`const _: () = assert!(..)`): weights plus arena fit the target's
//! memory window and the host's address space, every shard is aligned and inside the blob.
//!
//! # Arguments
//!
//! `path` (required): the GGUF file, relative to the crate's `Cargo.toml`, or absolute. It
//! may start with `${VAR}/`, expanded from the build's environment (and tracked: changing
//! the variable reruns the build script), for models kept outside the repository:
//!
//! ```ignore
//! #[npu_model(path = "models/smollm2.gguf", target = "cpu", quant = "fp16")]
//! pub struct InRepo;
//! #[npu_model(path = "${NPU_CACHE}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", target = "rk3588", quant = "int4_hadamard")]
//! pub struct FromCache;
//! ```
//!
//! `target` (required): the chip profile the weights are laid out for: `rk3588`, `rk3576`,
//! `rk3566`, `rk3568` or `cpu` (`npu_runtime::target`).
//!
//! ```ignore
//! #[npu_model(path = "m.gguf", target = "rk3566", quant = "int8")]
//! pub struct OnRk3566;
//! ```
//!
//! `quant` (required): the scheme (`npu_runtime::format::Scheme`): `fp16`, `int8`,
//! `int8_hadamard`, `int4`, `int4_hadamard`; the target must have its pipeline (RK3566/RK3568
//! have no int4).
//!
//! ```ignore
//! #[npu_model(path = "m.gguf", target = "rk3588", quant = "int4_hadamard")]
//! pub struct Small;
//! ```
//!
//! `context` (optional, default 512 or the model's trained context if smaller): positions
//! of KV cache the arena is sized for; at most the trained context.
//!
//! ```ignore
//! #[npu_model(path = "m.gguf", target = "cpu", quant = "int8", context = 2048)]
//! pub struct LongChat;
//! ```
//!
//! `embed` (optional, default `"auto"`): how the packed weights reach the binary.
//! `"bytes"` includes them with `include_bytes!` into an aligned static: simple, but rustc
//! holds every byte (~14x the blob in memory, ~0.15 s/MiB), so it suits firmware-sized
//! blobs (at most 512 MiB). `"object"` has the build script write an object file for the
//! compilation target and link it as a static library, so rustc never sees the bytes (ELF
//! and COFF targets: x86, x86-64, ARM, AArch64, RISC-V). `"auto"` picks `"bytes"` up to
//! 16 MiB and `"object"` above. Linked blobs are limited by how far the target's code
//! reaches its data: none on x86-64 (blobs of 1 GiB and more go into the large data
//! section; a 4.5 GiB blob links and reads back), 1.5 GiB on AArch64 and RISC-V 64
//! (32-bit PC-relative references across the blob; docs/large-blobs.md has the
//! measurements). A blob over the limit is a compile error naming both sizes.
//!
//! `"file"` links nothing: the build writes the blob, after a 64-byte header (magic,
//! version, length, SHA-256), to `<crate>-<Name>.npublob` beside the executable (the cargo
//! profile directory; `NPU_BUILD_BLOB_DIR` or `npu_build::Config::blob_dir` choose another),
//! and the struct gets, instead of `model()` and `blob()`:
//!
//! | item | what |
//! |---|---|
//! | `BLOB_FILE: &str` | the file's name |
//! | `blob_path() -> Result<PathBuf, BlobFileError>` | beside the running executable |
//! | `load() -> Result<&'static Model<'static>, BlobFileError>` | maps the file at `blob_path()` once (header and size checked against `BLOB_LEN` / `BLOB_SHA256`, nothing parsed) |
//! | `load_from(path) -> Result<Model<'static>, BlobFileError>` | the same for a file elsewhere |
//! | `verify_from(path) -> Result<(), BlobFileError>` | also hashes every byte |
//!
//! `BlobFileError` (`npu_runtime::blob_file::load`, feature `std`) names the path and the
//! reason: missing, wrong size, wrong header, corrupt. Ship the file with the executable.
//!
//! ```ignore
//! #[npu_model(path = "tiny.gguf", target = "cpu", quant = "int8", embed = "bytes")]
//! pub struct Firmware;
//! #[npu_model(path = "big.gguf", target = "rk3588", quant = "int4", embed = "object")]
//! pub struct Linked;
//! #[npu_model(path = "huge.gguf", target = "rk3588", quant = "int8", embed = "file")]
//! pub struct Beside;
//! // let model = Beside::load()?;
//! ```
//!
//! NPU memory: on RKNPU targets the runtime places the tensors into IOMMU domains of
//! `Target::max_buffer` bytes each (at most `Target::iommu_domains`); the plan is made at
//! pack time and generated as `IOMMU_DOMAINS` and `TENSOR_DOMAINS`. A tensor larger than a
//! domain, or a model needing more domains than the target has, is a compile error.
//!
//! # Errors
//!
//! Mistakes are compile errors under the attribute: unknown target or quant (with the valid
//! names and the nearest one), a scheme the target cannot run, a missing file (with the
//! resolved path), an unsupported architecture or tensor type, a tensor whose shape disagrees
//! with the hyperparameters (named, with its shape and the expected one), a context longer
//! than the model's, duplicate names, a missing build script. One mistake is one error: after
//! an error the struct still gets every associated item (inert placeholders), so code that
//! uses the model adds no "not found" errors. Errors found by the build script reach
//! the attribute through `OUT_DIR/npu-model/<Name>.err`, which the expansion reads: it is
//! rewritten whenever the build script reruns, which always recompiles this crate.
#![deny(missing_docs)]

use npu_build::declare::{self, Declaration, Embed, Site};
use npu_build::protocol::{self, Status};
use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;

/// Declares a model compiled into the binary at build time; see the crate docs.
#[proc_macro_attribute]
pub fn npu_model(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.into();
    let attr2: proc_macro2::TokenStream = attr.into();
    expand(attr2.clone(), item2.clone())
        .unwrap_or_else(|e| {
            // One error per mistake: keep the item and give it every associated item the
            // generated code has, so its uses elsewhere add no "not found" errors.
            let err = e.to_compile_error();
            let stand_in = syn::parse2::<syn::Item>(item2.clone()).ok().and_then(|it| {
                let ident = declare::check_item(&it).ok()?;
                let file = declare::parse_args(attr2, ident, Span::call_site())
                    .is_ok_and(|d| d.embed == Embed::File);
                Some(if file { placeholder_file_impl(ident) } else { placeholder_impl(ident) })
            });
            quote! { #err #item2 #stand_in }
        })
        .into()
}

/// [`placeholder_impl`] for `embed = "file"`: its items instead of `model()` and `blob()`
/// (keep in step with `npu_build::codegen::blob_file::items`).
fn placeholder_file_impl(ident: &syn::Ident) -> proc_macro2::TokenStream {
    let common = placeholder_common(ident);
    quote! {
        #common
        #[allow(dead_code, clippy::all)]
        impl #ident {
            /// Placeholder.
            pub const BLOB_FILE: &'static str = "";
            /// Placeholder.
            pub fn blob_path() -> ::core::result::Result<::std::path::PathBuf, ::npu_runtime::blob_file::load::BlobFileError> {
                ::core::unreachable!()
            }
            /// Placeholder.
            pub fn load() -> ::core::result::Result<&'static ::npu_runtime::model::Model<'static>, ::npu_runtime::blob_file::load::BlobFileError> {
                ::core::unreachable!()
            }
            /// Placeholder.
            pub fn load_from(_path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<::npu_runtime::model::Model<'static>, ::npu_runtime::blob_file::load::BlobFileError> {
                ::core::unreachable!()
            }
            /// Placeholder.
            pub fn verify_from(_path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<(), ::npu_runtime::blob_file::load::BlobFileError> {
                ::core::unreachable!()
            }
        }
    }
}

/// The items of `npu_build::codegen::assemble`'s `impl`, with inert values: emitted next to
/// a compile error only (the build fails anyway), so code that uses the model type-checks
/// instead of repeating the error as "no associated item" errors. Keep the names and types
/// in step with `assemble`.
fn placeholder_impl(ident: &syn::Ident) -> proc_macro2::TokenStream {
    let common = placeholder_common(ident);
    quote! {
        #common
        #[allow(dead_code, clippy::all)]
        impl #ident {
            /// Placeholder.
            pub fn model() -> &'static ::npu_runtime::model::Model<'static> {
                ::core::unreachable!()
            }
            /// Placeholder.
            pub fn blob() -> &'static [u8] {
                &[]
            }
        }
    }
}

/// The placeholder items every embedding mode has.
fn placeholder_common(ident: &syn::Ident) -> proc_macro2::TokenStream {
    quote! {
        #[allow(dead_code, clippy::all)]
        impl #ident {
            /// Placeholder: this declaration failed to compile.
            pub const CONFIG: ::npu_runtime::model::ModelConfig = ::npu_runtime::model::ModelConfig::new(
                ::npu_runtime::model::Arch::Llama, 1, 1, 1, 1, 1, 1, 1, 1.0, 1.0, true, 1, 0,
            );
            /// Placeholder.
            pub const CONTEXT: u32 = 1;
            /// Placeholder.
            pub const ARENA_BYTES: usize = 0;
            /// Placeholder.
            pub const BLOB_LEN: usize = 0;
            /// Placeholder.
            pub const BLOB_SHA256: [u8; 32] = [0; 32];
            /// Placeholder.
            pub const IOMMU_DOMAINS: u32 = 0;
            /// Placeholder.
            pub const TENSOR_DOMAINS: &'static [u8] = &[];
            /// Placeholder.
            pub const TARGET: ::npu_runtime::target::TargetId = ::npu_runtime::target::TargetId::Cpu;
            /// Placeholder.
            pub const SCHEME: ::npu_runtime::format::Scheme = ::npu_runtime::format::Scheme::Int8;
            /// Placeholder.
            pub const EMBED: &'static str = "bytes";
            /// Placeholder.
            pub fn tokenizer() -> &'static ::npu_runtime::tokenizer::TokenizerTables<'static> {
                ::core::unreachable!()
            }
        }
    }
}

fn expand(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let parsed: syn::Item = syn::parse2(item.clone())?;
    let ident = declare::check_item(&parsed)?.clone();
    let decl = declare::parse_args(attr, &ident, Span::call_site())?;
    status(&decl)?;
    let file = format!("/{}/{}", protocol::OUT_SUBDIR, protocol::code_file(&decl.name));
    Ok(quote! {
        #item
        ::core::include!(::core::concat!(::core::env!("OUT_DIR"), #file));
    })
}

/// Whether the build script produced this declaration's code, or the error to show.
fn status(decl: &Declaration) -> syn::Result<()> {
    let at = |site: Site, msg: String| syn::Error::new(site.span(&decl.spans), msg);
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        return Err(at(
            Site::Attr,
            "#[npu_model] needs a build script that runs npu-build, and this crate has none: add `build.rs` next to Cargo.toml with `fn main() { npu_build::compile().unwrap(); }` and to Cargo.toml `[build-dependencies] npu-build = \"0.1\"`".to_string(),
        ));
    };
    match protocol::status(std::path::Path::new(&out_dir), &decl.name) {
        Status::NotRun => Err(at(
            Site::Attr,
            "#[npu_model] needs npu-build to run in this crate's build script, and it did not: call `npu_build::compile().unwrap();` in `fn main` of build.rs (with `[build-dependencies] npu-build = \"0.1\"` in Cargo.toml)".to_string(),
        )),
        Status::Failed(site, msg) => Err(at(site, msg)),
        Status::NotFound => Err(at(
            Site::Name,
            format!(
                "npu-build did not find the declaration of `{}`: it scans src/lib.rs, src/main.rs and src/bin/* and the files their `mod` items name; declarations produced by other macros or in files no `mod` reaches are not seen",
                decl.name
            ),
        )),
        Status::Ready => Ok(()),
    }
}
