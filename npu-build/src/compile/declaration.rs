//! One declaration, in six steps: resolve the file → take the packed model from the cache or
//! pack it → check it against the declaration and target → embed the blob → place the
//! tokenizer tables' bytes → write the code.

use super::{Built, Ctx};
use crate::cache::{self, Entry, Key, BLOB_FILE};
use crate::codegen::{self, Assembly, BlobRef};
use crate::config::model_config;
use crate::declare::{self, Declaration, Embed, Site};
use crate::embed::{self, ObjTarget};
use crate::gguf::Gguf;
use crate::model::LoadError;
use crate::pack::{self, PackOptions};
use crate::protocol;
use crate::tokenizer::OwnedTokenizerTables;
use npu_runtime::blob_file::Header;
use npu_runtime::model::{arena_bytes, ModelConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Fail = (Site, String);

/// Builds one declaration.
pub(super) fn build(ctx: &Ctx, d: &Declaration) -> Result<Built, Fail> {
    let file = resolve(ctx, d)?;
    let target = ctx.target.clone().map_err(|m| (Site::Attr, m))?;
    let (key, dir, entry, cache_hit) = cache_or_pack(ctx, d, &file, &target)?;
    let (config, embed) = check(d, entry.config, entry.blob_len, &target)?;
    let (blob, link_lib) = embed_blob(ctx, d, &dir, &entry, embed, &target)?;
    let tokenizer_file = place_tokenizer(ctx, d, &dir, &target)?;
    write(ctx, d, &dir, &entry, config, blob, tokenizer_file)?;
    Ok(Built { embed, cache_hit, key, link_lib })
}

/// The static library of a declaration (`-l static=<this>`).
pub(super) fn lib_name(crate_name: &str, decl: &str) -> String {
    format!("npu_model_{}_{decl}", crate_name.replace('-', "_"))
}

/// The model file `path` names, which must exist.
fn resolve(ctx: &Ctx, d: &Declaration) -> Result<PathBuf, Fail> {
    // Declared before resolving: an unset variable fails the declaration, and setting it
    // later must rerun this script instead of replaying the stale error.
    if let Ok((Some(v), _)) = declare::split_env(&d.path) {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let resolved = declare::resolve_path(&d.path, &ctx.manifest_dir, |v| std::env::var(v).ok())
        .map_err(|m| (Site::Path, m))?;
    let file = resolved.file;
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
    Ok(file)
}

/// The cache entry for packing `file` as declared: found, or packed and stored. An entry
/// that does not load (corrupt, half-deleted, of an older shape) is packed again.
fn cache_or_pack(
    ctx: &Ctx,
    d: &Declaration,
    file: &Path,
    target: &ObjTarget,
) -> Result<(Key, PathBuf, Entry, bool), Fail> {
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
    let found = ctx.cache.get(&key).and_then(|dir| match Entry::load(&dir) {
        Ok(entry) => Some((dir, entry)),
        Err(why) => {
            println!("cargo:warning=npu-model: `{}`: ignoring a bad cache entry: {why}", d.name);
            ctx.cache.remove(&key);
            None
        }
    });
    let hit = found.is_some();
    let (dir, entry) = match found {
        Some(f) => f,
        None => pack_into_cache(ctx, d, file, &key, target)?,
    };
    ctx.log(|| {
        format!(
            "`{}`: hashed {} MiB in {:.2} s; cache {}",
            d.name,
            std::fs::metadata(file).map_or(0, |m| m.len()) >> 20,
            hash_time.as_secs_f64(),
            if hit { "hit" } else { "miss (packed)" }
        )
    });
    Ok((key, dir, entry, hit))
}

/// Reads, plans, checks, packs and code-generates a model into a new cache entry. The
/// declaration is checked against the plan (the blob's length) before anything is packed;
/// the blob is streamed into the entry's file tensor by tensor.
fn pack_into_cache(
    ctx: &Ctx,
    d: &Declaration,
    file: &Path,
    key: &Key,
    target: &ObjTarget,
) -> Result<(PathBuf, Entry), Fail> {
    let t0 = Instant::now();
    let g =
        Gguf::open(file).map_err(|e| (Site::Path, format!("cannot read the GGUF file: {e}")))?;
    let opts = PackOptions { target: d.target, scheme: d.scheme, threads: ctx.threads };
    let tokenizer = OwnedTokenizerTables::from_gguf(&g)
        .map_err(|e| load_failure(d, LoadError::Tokenizer(e)))?;
    let config =
        model_config(&g, &tokenizer, None).map_err(|e| load_failure(d, LoadError::Config(e)))?;
    let plan = pack::plan(&g, &opts).map_err(|e| load_failure(d, LoadError::Pack(e)))?;
    check(d, config, plan.blob_len, target)?;
    let descs: Vec<_> = plan.entries.iter().map(|e| e.desc()).collect();
    let domains = super::domains::plan_domains(&descs, d.target).map_err(|m| (Site::Quant, m))?;
    drop(descs);
    let tok_bytes = [true, false].map(|le| tokenizer.to_bytes(le));
    let tok_source = tokenizer.to_rust_source("NPU_TOK");
    drop(tokenizer);
    let mut packed = None;
    let stored = ctx.cache.put(key, |dir| {
        let blob = std::fs::File::create(dir.join(BLOB_FILE))?;
        let out = std::io::BufWriter::with_capacity(1 << 20, blob);
        let table = match pack::pack_planned(&g, &opts, plan, out) {
            Ok((_, table)) => table,
            Err(e) => {
                let msg = e.to_string();
                packed = Some(Err(e));
                return Err(std::io::Error::other(msg));
            }
        };
        let entry = Entry {
            blob_len: table.blob_len,
            blob_sha256: table.blob_sha256,
            tokenizer_len: tok_bytes[0].len() as u64,
            config,
        };
        for (le, bytes) in [true, false].into_iter().zip(&tok_bytes) {
            std::fs::write(dir.join(cache::tokenizer_file(le)), bytes)?;
        }
        std::fs::write(
            dir.join("model.rs"),
            codegen::model_part(&table, &tok_source, &domains.of_tensor, domains.domains),
        )?;
        std::fs::write(dir.join("report.json"), table.report.to_json())?;
        std::fs::write(dir.join("tensors.json"), table.tensors_json())?;
        std::fs::write(dir.join(cache::ENTRY_FILE), entry.to_json())?;
        packed = Some(Ok((table.report.summary_line(), entry)));
        Ok(())
    });
    let root = ctx.cache.root().display();
    let ((summary, entry), dir) = match (packed, stored) {
        (Some(Err(pack::PackError::Io(m))), _) => {
            return Err((Site::Attr, format!("writing the cache entry in {root}: {m}")));
        }
        (Some(Err(e)), _) => return Err(load_failure(d, LoadError::Pack(e))),
        (Some(Ok(done)), Ok(dir)) => (done, dir),
        (_, Err(e)) => {
            return Err((Site::Attr, format!("writing the cache entry in {root}: {e}")));
        }
        (None, Ok(_)) => unreachable!("a stored entry was filled"),
    };
    ctx.log(|| {
        let secs = t0.elapsed().as_secs_f64();
        format!("`{}`: packed in {secs:.2} s ({summary})", d.name)
    });
    Ok((dir, entry))
}

/// The message and site of a model that could not be read or packed.
fn load_failure(d: &Declaration, e: LoadError) -> Fail {
    match e {
        LoadError::Pack(e) => {
            let site = match e {
                pack::PackError::Runtime(npu_runtime::Error::UnsupportedScheme { .. }) => {
                    Site::Quant
                }
                _ => Site::Path,
            };
            (site, format!("packing for {} / {}: {e}", d.target.name, d.scheme.name()))
        }
        e => (Site::Path, e.to_string()),
    }
}

/// The config at the declared context, and the embedding, once the model is known to fit the
/// declaration and the target.
fn check(
    d: &Declaration,
    mut config: ModelConfig,
    blob_len: u64,
    target: &ObjTarget,
) -> Result<(ModelConfig, Embed), Fail> {
    let trained = config.context_len;
    // Context: the declaration's, checked against the trained length; by default the smaller
    // of DEFAULT_CONTEXT and the trained length.
    let context = match (d.context_given, d.context > trained) {
        (true, true) => {
            let msg = format!(
                "context = {} exceeds the model's trained context length {trained}",
                d.context
            );
            return Err((Site::Context, msg));
        }
        (true, false) => d.context,
        (false, _) => d.context.min(trained),
    };
    config.context_len = context;
    if let Some(why) = config.invalid() {
        let msg = format!("the model's hyperparameters are not supported by npu-runtime: {why}");
        return Err((Site::Path, msg));
    }
    let arena = arena_bytes(&config, context) as u64;
    let memory = d.target.npu_memory();
    if blob_len.saturating_add(arena) > memory {
        return Err((
            if d.context_given { Site::Context } else { Site::Quant },
            format!(
                "packed weights ({} bytes) plus the arena for context {context} ({arena} bytes) exceed the {memory} bytes target `{}` addresses ({} IOMMU domains of {} bytes); lower `context` or choose a smaller quant",
                blob_len, d.target.name, d.target.iommu_domains, d.target.iommu_window
            ),
        ));
    }
    let embed = embed::check_limits(d.embed, blob_len, target).map_err(|m| (embed_site(d), m))?;
    Ok((config, embed))
}

/// Where an embedding error shows: the `embed` value, or the attribute when it has none.
fn embed_site(d: &Declaration) -> Site {
    if d.embed == Embed::Auto {
        Site::Attr
    } else {
        Site::Embed
    }
}

/// Puts the blob where the generated code finds it: a static library (`Object`), a file
/// for `include_bytes!` (`Bytes`), or a blob file beside the executable (`File`). A stamp naming mode, digest, symbol and target skips the work when
/// nothing changed.
fn embed_blob(
    ctx: &Ctx,
    d: &Declaration,
    dir: &Path,
    entry: &Entry,
    embed: Embed,
    target: &ObjTarget,
) -> Result<(BlobRef, Option<String>), Fail> {
    let gen = &ctx.gen_dir;
    let blob_path = dir.join(BLOB_FILE);
    let lib = lib_name(&ctx.crate_name, &d.name);
    let lib_file = gen.join(target.static_lib_file(&lib));
    let bytes_file = gen.join(format!("{}.blob", d.name));
    let stamp_path = gen.join(format!("{}.stamp", d.name));
    let symbol = embed::symbol_name(&ctx.crate_name, &d.name, &entry.blob_sha256);
    let sha_hex = cache::hex(&entry.blob_sha256);
    let stamp = format!("{} {} {} {:?}\n", embed.name(), sha_hex, symbol, target);
    let fresh = std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    let io = |e: std::io::Error| (Site::Attr, format!("writing {}: {e}", gen.display()));
    let write_stamp = || {
        cache::write_atomic(&stamp_path, |w| std::io::Write::write_all(w, stamp.as_bytes()))
            .map_err(io)
    };
    let t1 = Instant::now();
    let (out, stale) = match embed {
        Embed::File => {
            let dir = ctx.blob_dir.clone().map_err(|m| (Site::Embed, m))?;
            let name = embed::file::file_name(&ctx.crate_name, &d.name);
            let header = Header::new(entry.blob_len, entry.blob_sha256);
            let dest = dir.join(&name);
            embed::file::write(&blob_path, &dest, &header).map_err(|m| (Site::Embed, m))?;
            // A deleted or replaced blob file is written again by the next build.
            println!("cargo:rerun-if-changed={}", dest.display());
            let _ = std::fs::remove_file(&stamp_path);
            let _ = std::fs::remove_file(&lib_file);
            ((BlobRef::File { file_name: name }, None), bytes_file)
        }
        Embed::Object => {
            if !(fresh && lib_file.is_file()) {
                let _ = std::fs::remove_file(&stamp_path);
                let blob = embed::blob_file::BlobFile::open(&blob_path).map_err(io)?;
                embed::archive::write(&lib_file, &symbol, |w| {
                    let align = npu_runtime::format::BLOB_ALIGN;
                    embed::object_file::write(target, &symbol, blob.bytes(), align, blob.writer(w))
                })
                .map_err(|m| (Site::Attr, m))?;
                write_stamp()?;
            }
            ((BlobRef::Object { symbol }, Some(lib)), bytes_file)
        }
        _ => {
            if !(fresh && bytes_file.is_file()) {
                let _ = std::fs::remove_file(&stamp_path);
                cache::copy_if_changed(&blob_path, &bytes_file).map_err(io)?;
                write_stamp()?;
            }
            ((BlobRef::Bytes { file: format!("{}.blob", d.name) }, None), lib_file)
        }
    };
    let _ = std::fs::remove_file(stale);
    ctx.log(|| {
        let secs = t1.elapsed().as_secs_f64();
        format!(
            "`{}`: embedded {} bytes as {} in {secs:.2} s",
            d.name,
            entry.blob_len,
            embed.name()
        )
    });
    Ok(out)
}

/// Copies the tokenizer tables' bytes in the compilation target's byte order to
/// `OUT_DIR/npu-model/<Name>.tok`, which the generated code includes; returns that file name.
fn place_tokenizer(
    ctx: &Ctx,
    d: &Declaration,
    dir: &Path,
    target: &ObjTarget,
) -> Result<String, Fail> {
    let src = dir.join(cache::tokenizer_file(target.little_endian));
    let bytes = std::fs::read(&src)
        .map_err(|e| (Site::Attr, format!("reading cache entry {}: {e}", src.display())))?;
    let file = format!("{}.tok", d.name);
    cache::write_if_changed(&ctx.gen_dir.join(&file), &bytes)
        .map_err(|e| (Site::Attr, format!("writing {}: {e}", ctx.gen_dir.display())))?;
    Ok(file)
}

/// Writes `OUT_DIR/npu-model/<Name>.rs` (and a copy of the packing report beside it).
fn write(
    ctx: &Ctx,
    d: &Declaration,
    dir: &Path,
    entry: &Entry,
    config: ModelConfig,
    blob: BlobRef,
    tokenizer_file: String,
) -> Result<(), Fail> {
    let gen = &ctx.gen_dir;
    let io = |e: std::io::Error| (Site::Attr, format!("writing {}: {e}", gen.display()));
    let model_part = std::fs::read_to_string(dir.join("model.rs"))
        .map_err(|e| (Site::Attr, format!("reading cache entry {}: {e}", dir.display())))?;
    let assembly = Assembly {
        name: &d.name,
        path: &d.path,
        target: d.target,
        scheme: d.scheme,
        config,
        blob_len: entry.blob_len,
        blob_sha256: entry.blob_sha256,
        blob,
        tokenizer_file,
    };
    let code = codegen::assemble(&assembly, &model_part);
    cache::write_if_changed(&gen.join(protocol::code_file(&d.name)), code.as_bytes())
        .map_err(io)?;
    let report = dir.join("report.json");
    if report.is_file() {
        let _ = std::fs::read(&report)
            .map(|r| cache::write_if_changed(&gen.join(format!("{}.report.json", d.name)), &r));
    }
    Ok(())
}
