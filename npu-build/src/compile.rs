//! The build-script entry: `npu_build::compile()`.
//!
//! ```text
//! // build.rs                              # Cargo.toml
//! fn main() {                              # [build-dependencies]
//!     npu_build::compile().unwrap();       # npu-build = "0.1"
//! }                                        # [profile.release.build-override]
//!                                          # opt-level = 3   (packing is ~5x slower without)
//! ```
//!
//! It finds every `#[npu_model]` in the crate ([`crate::discover`]), and for each one: resolves
//! `path`, hashes the file, packs it unless the cache has it ([`crate::cache`]), embeds the
//! blob ([`crate::embed`]) and writes `OUT_DIR/npu-model/<Name>.rs` ([`crate::codegen`]).
//!
//! Errors in a declaration (missing file, unsupported architecture or tensor type, context
//! too long, duplicate names, ...) are *not* returned as `Err`: a panicking build script would
//! show a backtrace instead of a pointer at the mistake. They are written to
//! `OUT_DIR/npu-model/<Name>.err` (which argument, and the message); the attribute reads that
//! file when it expands and emits `compile_error!` with that argument's span, so rustc shows
//! the message under the attribute. Each one is also printed as a `cargo:warning`.
//! `Err` is left for the cases where nothing can be attributed to a declaration: not running
//! inside a build script, or `OUT_DIR` not writable.
//!
//! Environment read (each declared with `rerun-if-env-changed`): `NPU_BUILD_CACHE` (a
//! cache directory shared between target dirs, opt-in: cargo's rule is that build scripts
//! write only to `OUT_DIR`), `NPU_BUILD_THREADS` (packing threads; the output does not depend
//! on it; default: cargo's `NUM_JOBS`), `NPU_BUILD_VERBOSE` (print timings as warnings), every
//! `${VAR}` used at the start of a `path`, and the `CARGO_CFG_TARGET_*` variables.

use crate::cache::{self, Cache, Key};
use crate::codegen::{self, Assembly, BlobRef};
use crate::declare::{self, Declaration, Embed, Site};
use crate::discover::{self, Found};
use crate::embed::{self, ObjTarget};
use crate::gguf::Gguf;
use crate::model::{LoadError, OwnedModel};
use crate::pack::{self, PackOptions};
use npu_runtime::model::arena_bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Subdirectory of `OUT_DIR` holding everything npu-build writes.
pub const OUT_SUBDIR: &str = "npu-model";

/// File in [`OUT_SUBDIR`] that marks a completed `compile()` run; the attribute checks it to
/// tell "build.rs does not call npu-build" from "this declaration was not found".
pub const INDEX_FILE: &str = "index";

/// Why `compile()` could not run at all.
#[derive(Debug)]
pub enum CompileError {
    /// A variable cargo sets for build scripts is missing.
    NotBuildScript(&'static str),
    /// Writing into `OUT_DIR` failed.
    Io(String),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::NotBuildScript(v) => {
                write!(f, "npu_build::compile() must run from a build script (`{v}` is not set)")
            }
            CompileError::Io(m) => write!(f, "npu-build: {m}"),
        }
    }
}

impl std::error::Error for CompileError {}

/// What happened to one declaration.
#[derive(Clone, Debug)]
pub struct ModelOutcome {
    /// The struct's name.
    pub name: String,
    /// `Ok` with the embedding used, or the message shown at the attribute.
    pub result: Result<Embed, String>,
    /// Whether the packed model came from the cache.
    pub cache_hit: bool,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    /// One entry per declaration, in discovery order.
    pub models: Vec<ModelOutcome>,
}

impl Compiled {
    /// Whether every declaration compiled.
    pub fn all_ok(&self) -> bool {
        self.models.iter().all(|m| m.result.is_ok())
    }
}

struct Ctx {
    manifest_dir: PathBuf,
    gen_dir: PathBuf,
    crate_name: String,
    target: Result<ObjTarget, String>,
    cache: Cache,
    threads: usize,
    verbose: bool,
}

/// Compiles every `#[npu_model]` declaration of the crate whose build script calls it.
pub fn compile() -> Result<Compiled, CompileError> {
    let var = |k: &'static str| {
        std::env::var_os(k).map(PathBuf::from).ok_or(CompileError::NotBuildScript(k))
    };
    let manifest_dir = var("CARGO_MANIFEST_DIR")?;
    let out_dir = var("OUT_DIR")?;
    let crate_name = std::env::var("CARGO_PKG_NAME")
        .map_err(|_| CompileError::NotBuildScript("CARGO_PKG_NAME"))?;
    for v in ["NPU_BUILD_CACHE", "NPU_BUILD_THREADS", "NPU_BUILD_VERBOSE"]
        .iter()
        .chain(embed::TARGET_ENV_VARS.iter())
    {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let gen_dir = out_dir.join(OUT_SUBDIR);
    std::fs::create_dir_all(&gen_dir)
        .map_err(|e| CompileError::Io(format!("creating {}: {e}", gen_dir.display())))?;
    let shared = std::env::var_os("NPU_BUILD_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from);
    let cache = Cache::new(shared.clone().unwrap_or_else(|| gen_dir.join("cache")));
    let threads = std::env::var("NPU_BUILD_THREADS")
        .ok()
        .or_else(|| std::env::var("NUM_JOBS").ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let ctx = Ctx {
        manifest_dir: manifest_dir.clone(),
        gen_dir: gen_dir.clone(),
        crate_name,
        target: ObjTarget::from_env(),
        cache,
        threads,
        verbose: std::env::var("NPU_BUILD_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0"),
    };

    let disc = discover::discover(&manifest_dir);
    for f in disc.files.iter().chain(disc.dirs.iter()) {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let mut by_name: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in &disc.found {
        by_name.entry(f.name.as_str()).or_default().push(f);
    }
    let mut compiled = Compiled::default();
    let mut keep_keys = Vec::new();
    let mut link_libs = Vec::new();
    let mut names = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for f in &disc.found {
        if f.name.is_empty() || !done.insert(f.name.as_str()) {
            continue;
        }
        names.push(f.name.clone());
        let same = &by_name[f.name.as_str()];
        let result: Result<(Embed, bool), (Site, String)> = if same.len() > 1 {
            let places: Vec<String> =
                same.iter().map(|g| format!("{}:{}", g.file, g.line)).collect();
            Err((
                Site::Name,
                format!(
                    "duplicate #[npu_model] name `{}` (declared at {}): each model needs its own struct name, because its generated code is OUT_DIR/npu-model/{}.rs",
                    f.name,
                    places.join(" and "),
                    f.name
                ),
            ))
        } else {
            match &f.decl {
                // The attribute reports its own argument errors with precise spans; this
                // copy only matters if the two parsers ever disagreed.
                Err(m) => Err((Site::Attr, m.clone())),
                Ok(d) => build_one(&ctx, d).map(|o| {
                    if let Some(k) = o.key {
                        keep_keys.push(k);
                    }
                    if let Some(l) = o.link_lib {
                        link_libs.push(l);
                    }
                    (o.embed, o.cache_hit)
                }),
            }
        };
        let rs = gen_dir.join(format!("{}.rs", f.name));
        let err = gen_dir.join(format!("{}.err", f.name));
        let io =
            |e: std::io::Error| CompileError::Io(format!("writing {}: {e}", gen_dir.display()));
        match result {
            Ok((embed, hit)) => {
                if err.exists() {
                    std::fs::remove_file(&err).map_err(io)?;
                }
                compiled.models.push(ModelOutcome {
                    name: f.name.clone(),
                    result: Ok(embed),
                    cache_hit: hit,
                });
            }
            Err((site, msg)) => {
                println!(
                    "cargo:warning=npu-model: `{}` ({}:{}): {}",
                    f.name,
                    f.file,
                    f.line,
                    msg.replace('\n', " ")
                );
                cache::write_if_changed(&err, format!("{}\n{}", site.name(), msg).as_bytes())
                    .map_err(io)?;
                cache::write_if_changed(&rs, codegen::error_file(&f.name, &msg).as_bytes())
                    .map_err(io)?;
                compiled.models.push(ModelOutcome {
                    name: f.name.clone(),
                    result: Err(msg),
                    cache_hit: false,
                });
            }
        }
    }
    if !link_libs.is_empty() {
        println!("cargo:rustc-link-search=native={}", gen_dir.display());
        for l in &link_libs {
            // -bundle: the rlib records the library's name instead of copying a multi-GiB
            // archive into itself; the final link finds it through the search path above,
            // which cargo passes on to every crate that links this one.
            println!("cargo:rustc-link-lib=static:-bundle={l}");
        }
    }
    remove_stale(&ctx, &names);
    if shared.is_none() {
        // The private cache keeps exactly the entries in use: a changed model does not leave
        // its old multi-hundred-MB blob behind in OUT_DIR.
        ctx.cache.retain(&keep_keys);
    }
    let index: String = names.iter().map(|n| format!("{n}\n")).collect();
    cache::write_if_changed(&gen_dir.join(INDEX_FILE), index.as_bytes())
        .map_err(|e| CompileError::Io(format!("writing {}: {e}", gen_dir.display())))?;
    Ok(compiled)
}

/// Removes files in the generated directory that belong to no current declaration
/// (renamed or deleted models, leftovers of interrupted runs).
fn remove_stale(ctx: &Ctx, names: &[String]) {
    let mut own: Vec<String> = vec![INDEX_FILE.to_string(), "cache".to_string()];
    for n in names {
        for ext in ["rs", "err", "blob", "tok", "stamp", "report.json"] {
            own.push(format!("{n}.{ext}"));
        }
        if let Ok(t) = &ctx.target {
            own.push(t.static_lib_file(&lib_name(&ctx.crate_name, n)));
        }
    }
    let Ok(rd) = std::fs::read_dir(&ctx.gen_dir) else { return };
    for e in rd.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if !own.contains(&file) && e.path().is_file() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The static library of a declaration (`-l static=<this>`).
fn lib_name(crate_name: &str, decl: &str) -> String {
    format!("npu_model_{}_{decl}", crate_name.replace('-', "_"))
}

struct Built {
    embed: Embed,
    cache_hit: bool,
    key: Option<Key>,
    link_lib: Option<String>,
}

fn log(ctx: &Ctx, msg: impl FnOnce() -> String) {
    if ctx.verbose {
        println!("cargo:warning=npu-model: {}", msg());
    }
}

fn build_one(ctx: &Ctx, d: &Declaration) -> Result<Built, (Site, String)> {
    let at = |site: Site| move |m: String| (site, m);
    // Declared before resolving: an unset variable fails the declaration, and setting it
    // later must rerun this script instead of replaying the stale error.
    if let Ok((Some(v), _)) = declare::split_env(&d.path) {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let resolved = declare::resolve_path(&d.path, &ctx.manifest_dir, |v| std::env::var(v).ok())
        .map_err(at(Site::Path))?;
    let file = &resolved.file;
    // Declared even when missing: cargo reruns the script once the file appears.
    println!("cargo:rerun-if-changed={}", file.display());
    if !file.is_file() {
        let how = match &resolved.env_var {
            Some(v) => format!("`${{{v}}}` expanded from the environment"),
            None => format!("relative to CARGO_MANIFEST_DIR {}", ctx.manifest_dir.display()),
        };
        return Err((
            Site::Path,
            format!("model file not found: {} (path = \"{}\", {how})", file.display(), d.path),
        ));
    }
    let target = ctx.target.clone().map_err(at(Site::Attr))?;

    let t0 = Instant::now();
    let digest = cache::hash_file(file)
        .map_err(|e| (Site::Path, format!("reading {}: {e}", file.display())))?;
    let hash_time = t0.elapsed();
    let key = Key::new(
        &digest,
        &[
            d.target.name.as_bytes(),
            d.scheme.name().as_bytes(),
            &codegen::CODEGEN_VERSION.to_le_bytes(),
        ],
    );
    let (entry, hit) = match ctx.cache.get(&key) {
        Some(dir) => (dir, true),
        None => (pack_into_cache(ctx, d, file, &key)?, false),
    };
    log(ctx, || {
        format!(
            "`{}`: hashed {} MiB in {:.2} s; cache {}",
            d.name,
            std::fs::metadata(file).map_or(0, |m| m.len()) >> 20,
            hash_time.as_secs_f64(),
            if hit { "hit" } else { "miss (packed)" }
        )
    });

    let read = |f: &str| {
        std::fs::read_to_string(entry.join(f))
            .map_err(|e| (Site::Attr, format!("reading cache entry {}: {e}", entry.display())))
    };
    let info = read("info")?;
    let field = |k: &str| {
        info.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('='))).unwrap_or("")
    };
    let blob_len: u64 = field("blob_len")
        .parse()
        .map_err(|_| (Site::Attr, "corrupt cache entry (blob_len)".to_string()))?;
    let sha_hex = field("blob_sha256");
    let mut blob_sha256 = [0u8; 32];
    for (i, b) in blob_sha256.iter_mut().enumerate() {
        *b =
            sha_hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    let mut config = codegen::config_from_text(&read("config")?)
        .ok_or((Site::Attr, "corrupt cache entry (config)".to_string()))?;
    let trained = config.context_len;

    // Context: the declaration's, checked against the trained length; by default the smaller
    // of DEFAULT_CONTEXT and the trained length.
    let context = if d.context_given {
        if d.context > trained {
            return Err((
                Site::Context,
                format!(
                    "context = {} exceeds the model's trained context length {trained}",
                    d.context
                ),
            ));
        }
        d.context
    } else {
        d.context.min(trained)
    };
    config.context_len = context;
    if let Some(why) = config.invalid() {
        return Err((
            Site::Path,
            format!("the model's hyperparameters are not supported by npu-runtime: {why}"),
        ));
    }
    let arena = arena_bytes(&config, context) as u64;
    if blob_len.saturating_add(arena) > d.target.iommu_window {
        return Err((
            if d.context_given { Site::Context } else { Site::Quant },
            format!(
                "packed weights ({blob_len} bytes) plus the arena for context {context} ({arena} bytes) exceed the {} bytes target `{}` addresses in one IOMMU domain; lower `context` or choose a smaller quant",
                d.target.iommu_window, d.target.name
            ),
        ));
    }
    let explicit = if d.embed == Embed::Auto { Site::Attr } else { Site::Embed };
    let embed = embed::check_limits(d.embed, blob_len, &target).map_err(at(explicit))?;

    let gen = &ctx.gen_dir;
    let blob_path = entry.join("blob");
    let lib = lib_name(&ctx.crate_name, &d.name);
    let lib_file = gen.join(target.static_lib_file(&lib));
    let bytes_file = gen.join(format!("{}.blob", d.name));
    let stamp_path = gen.join(format!("{}.stamp", d.name));
    let symbol = embed::symbol_name(&ctx.crate_name, &d.name, &blob_sha256);
    let stamp = format!("{} {} {} {:?}\n", embed.name(), sha_hex, symbol, target);
    let fresh = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    let io = |e: std::io::Error| (Site::Attr, format!("writing {}: {e}", gen.display()));
    let t1 = Instant::now();
    let (blob_ref, link_lib) = match embed {
        Embed::Object => {
            if !(fresh && lib_file.is_file()) {
                let _ = std::fs::remove_file(&stamp_path);
                let f = std::fs::File::open(&blob_path).map_err(io)?;
                // SAFETY: a cache entry is never modified after it is renamed into place.
                let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
                embed::archive::write(&lib_file, &symbol, |w| {
                    embed::object_file::write(
                        &target,
                        &symbol,
                        &map,
                        npu_runtime::format::BLOB_ALIGN,
                        w,
                    )
                })
                .map_err(at(Site::Attr))?;
                cache::write_atomic(&stamp_path, |w| {
                    std::io::Write::write_all(w, stamp.as_bytes())
                })
                .map_err(io)?;
            }
            let _ = std::fs::remove_file(&bytes_file);
            (BlobRef::Object { symbol }, Some(lib))
        }
        _ => {
            if !(fresh && bytes_file.is_file()) {
                let _ = std::fs::remove_file(&stamp_path);
                let blob = std::fs::read(&blob_path).map_err(io)?;
                cache::write_if_changed(&bytes_file, &blob).map_err(io)?;
                cache::write_atomic(&stamp_path, |w| {
                    std::io::Write::write_all(w, stamp.as_bytes())
                })
                .map_err(io)?;
            }
            let _ = std::fs::remove_file(&lib_file);
            (BlobRef::Bytes { file: format!("{}.blob", d.name) }, None)
        }
    };
    log(ctx, || {
        format!(
            "`{}`: embedded {blob_len} bytes as {} in {:.2} s",
            d.name,
            embed.name(),
            t1.elapsed().as_secs_f64()
        )
    });

    // The tokenizer tables' bytes, in the compilation target's byte order.
    let tok_file = format!("{}.tok", d.name);
    let tok = std::fs::read(entry.join(if target.little_endian {
        "tokenizer.le"
    } else {
        "tokenizer.be"
    }))
    .map_err(|e| (Site::Attr, format!("reading cache entry {}: {e}", entry.display())))?;
    cache::write_if_changed(&gen.join(&tok_file), &tok).map_err(io)?;

    let model_part = read("model.rs")?;
    let code = codegen::assemble(
        &Assembly {
            name: &d.name,
            path: &d.path,
            target: d.target,
            scheme: d.scheme,
            config,
            blob_len,
            blob_sha256,
            blob: blob_ref,
            tokenizer_file: tok_file,
        },
        &model_part,
    );
    cache::write_if_changed(&gen.join(format!("{}.rs", d.name)), code.as_bytes()).map_err(io)?;
    let report = entry.join("report.json");
    if report.is_file() {
        let _ = std::fs::read(&report)
            .map(|r| cache::write_if_changed(&gen.join(format!("{}.report.json", d.name)), &r));
    }
    Ok(Built { embed, cache_hit: hit, key: Some(key), link_lib })
}

/// Reads, packs and code-generates a model into a new cache entry.
fn pack_into_cache(
    ctx: &Ctx,
    d: &Declaration,
    file: &Path,
    key: &Key,
) -> Result<PathBuf, (Site, String)> {
    let t0 = Instant::now();
    let g =
        Gguf::open(file).map_err(|e| (Site::Path, format!("cannot read the GGUF file: {e}")))?;
    let opts = PackOptions { target: d.target, scheme: d.scheme, threads: ctx.threads };
    let OwnedModel { config, packed, tokenizer: tok } = OwnedModel::from_gguf(&g, &opts, None)
        .map_err(|e| match e {
            LoadError::Pack(e) => {
                let site = if matches!(
                    e,
                    pack::PackError::Runtime(npu_runtime::Error::UnsupportedScheme { .. })
                ) {
                    Site::Quant
                } else {
                    Site::Path
                };
                (site, format!("packing for {} / {}: {e}", d.target.name, d.scheme.name()))
            }
            e => (Site::Path, e.to_string()),
        })?;
    let sha = cache::sha256(&packed.blob);
    let part = codegen::model_part(&packed, &tok.to_rust_source("NPU_TOK"));
    let info = format!("blob_len={}\nblob_sha256={}\n", packed.blob.len(), cache::hex(&sha));
    let dir = ctx
        .cache
        .put(key, |dir| {
            std::fs::write(dir.join("blob"), &packed.blob)?;
            std::fs::write(dir.join("model.rs"), &part)?;
            std::fs::write(dir.join("tokenizer.le"), tok.to_bytes(true))?;
            std::fs::write(dir.join("tokenizer.be"), tok.to_bytes(false))?;
            std::fs::write(dir.join("config"), codegen::config_to_text(&config))?;
            std::fs::write(dir.join("report.json"), packed.report.to_json())?;
            std::fs::write(dir.join("tensors.json"), packed.tensors_json())?;
            std::fs::write(dir.join("info"), &info)
        })
        .map_err(|e| {
            (Site::Attr, format!("writing the cache entry in {}: {e}", ctx.cache.root().display()))
        })?;
    log(ctx, || {
        format!(
            "`{}`: packed in {:.2} s ({})",
            d.name,
            t0.elapsed().as_secs_f64(),
            packed.report.summary_line()
        )
    });
    Ok(dir)
}
