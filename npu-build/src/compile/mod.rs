//! The build-script entry: [`Config`] and its sugar [`compile()`].
//!
//! ```text
//! // build.rs                              # Cargo.toml
//! fn main() {                              # [build-dependencies]
//!     npu_build::compile().unwrap();       # npu-build = "0.1"
//! }                                        # [profile.release.build-override]
//!                                          # opt-level = 3   (packing is ~5x slower without)
//! ```
//!
//! A run finds every `#[npu_model]` in the crate (`discover`), and for each one
//! ([`declaration`]): resolves `path`, takes the packed model from the cache or packs it, checks
//! it against the declaration and the target, embeds the blob, places the tokenizer tables'
//! bytes (`<Name>.tok`) and writes `OUT_DIR/npu-model/<Name>.rs`.
//!
//! Errors in a declaration (missing file, unsupported architecture or tensor type, context
//! too long, duplicate names, ...) are *not* returned as `Err`: a panicking build script would
//! show a backtrace instead of a pointer at the mistake. They reach the attribute through
//! [`crate::protocol`], which shows them under the argument they concern; each one is also
//! printed as a `cargo:warning`. `Err` is left for the cases where nothing can be attributed
//! to a declaration: not running inside a build script, or `OUT_DIR` not writable.

mod declaration;
mod domains;

use crate::cache::{self, Cache, Key};
use crate::declare::{Embed, Site};
use crate::discover::{self, Found};
use crate::embed::{self, ObjTarget};
use crate::{codegen, protocol};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// Why a run could not happen at all.
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

/// Environment variables [`Config::from_env`] reads (each declared with
/// `rerun-if-env-changed` when it is used).
pub const ENV_VARS: [&str; 4] =
    ["NPU_BUILD_CACHE", "NPU_BUILD_THREADS", "NPU_BUILD_VERBOSE", "NPU_BUILD_BLOB_DIR"];

/// How to compile a crate's `#[npu_model]` declarations: a builder in the style of
/// `prost_build::Config`.
///
/// ```no_run
/// // in build.rs's `fn main`:
/// npu_build::Config::new()
///     .cache_dir("/var/cache/npu-model")
///     .threads(4)
///     .verbose(true)
///     .blob_dir("/opt/app/weights")
///     .compile()
///     .unwrap();
/// ```
///
/// The packed output never depends on these settings: they choose where finished work is
/// kept, how many threads do it and what is printed.
#[derive(Clone, Debug, Default)]
pub struct Config {
    cache_dir: Option<PathBuf>,
    threads: Option<usize>,
    verbose: bool,
    blob_dir: Option<PathBuf>,
    from_env: bool,
}

impl Config {
    /// Defaults: the cache private to `OUT_DIR` (`OUT_DIR/npu-model/cache`, holding only the
    /// entries in use), cargo's job count (`NUM_JOBS`) as threads, quiet.
    pub fn new() -> Config {
        Config::default()
    }

    /// Defaults from the environment, each variable overriding one setting of
    /// [`Config::new`]:
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `NPU_BUILD_CACHE` | [`Config::cache_dir`]: a cache shared between target directories (opt-in: cargo's rule is that build scripts write only to `OUT_DIR`) |
    /// | `NPU_BUILD_THREADS` | [`Config::threads`] |
    /// | `NPU_BUILD_VERBOSE` | [`Config::verbose`] (any value but empty or `0`) |
    /// | `NPU_BUILD_BLOB_DIR` | [`Config::blob_dir`] |
    ///
    /// [`Config::compile`] then declares each with `rerun-if-env-changed`.
    pub fn from_env() -> Config {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Config {
            cache_dir: var("NPU_BUILD_CACHE").map(PathBuf::from),
            threads: var("NPU_BUILD_THREADS").and_then(|v| v.parse().ok()).filter(|&n| n > 0),
            verbose: var("NPU_BUILD_VERBOSE").is_some_and(|v| v != "0"),
            blob_dir: var("NPU_BUILD_BLOB_DIR").map(PathBuf::from),
            from_env: true,
        }
    }

    /// A cache directory shared between target directories and projects, instead of the
    /// private one in `OUT_DIR`. Entries are keyed by content hash; nothing is ever evicted
    /// from a shared cache by npu-build.
    pub fn cache_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Packing threads (at least 1).
    pub fn threads(&mut self, n: usize) -> &mut Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Print what each declaration cost (hashing, packing, embedding) as cargo warnings.
    pub fn verbose(&mut self, on: bool) -> &mut Self {
        self.verbose = on;
        self
    }

    /// Where `embed = "file"` declarations write their blob files, instead of the cargo
    /// profile directory that holds the executable (where the generated `load()` looks); a
    /// relative path is relative to the crate's `Cargo.toml`. With another directory the
    /// application opens the file with `load_from(path)`.
    pub fn blob_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.blob_dir = Some(dir.into());
        self
    }

    /// Compiles every `#[npu_model]` declaration of the crate whose build script calls it.
    pub fn compile(&self) -> Result<Compiled, CompileError> {
        let ctx = self.context()?;
        let disc = discover::discover(&ctx.manifest_dir);
        for f in disc.files.iter().chain(disc.dirs.iter()) {
            println!("cargo:rerun-if-changed={}", f.display());
        }
        let mut run = Run::default();
        for (f, same) in unique_names(&disc.found) {
            run.names.push(f.name.clone());
            let result = match (&f.decl, same.len()) {
                (_, 2..) => Err((Site::Name, duplicate_message(f, &same))),
                // The attribute reports its own argument errors with precise spans; this
                // copy only matters if the two parsers ever disagreed.
                (Err(m), _) => Err((Site::Attr, m.clone())),
                (Ok(d), _) => declaration::build(&ctx, d),
            };
            run.record(&ctx, f, result)?;
        }
        run.finish(&ctx, self.cache_dir.is_some())
    }

    fn context(&self) -> Result<Ctx, CompileError> {
        let var = |k: &'static str| std::env::var_os(k).ok_or(CompileError::NotBuildScript(k));
        let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
        let out_dir = PathBuf::from(var("OUT_DIR")?);
        let gen_dir = protocol::gen_dir(&out_dir);
        let crate_name = var("CARGO_PKG_NAME")?.to_string_lossy().into_owned();
        let own_vars = if self.from_env { &ENV_VARS[..] } else { &[] };
        for v in own_vars.iter().chain(embed::TARGET_ENV_VARS.iter()) {
            println!("cargo:rerun-if-env-changed={v}");
        }
        std::fs::create_dir_all(&gen_dir)
            .map_err(|e| CompileError::Io(format!("creating {}: {e}", gen_dir.display())))?;
        let threads = self
            .threads
            .or_else(|| std::env::var("NUM_JOBS").ok().and_then(|v| v.parse().ok()))
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let cache_root = self.cache_dir.clone().unwrap_or_else(|| gen_dir.join("cache"));
        let blob_dir = match &self.blob_dir {
            Some(d) => Ok(manifest_dir.join(d)),
            None => embed::file::profile_dir(&out_dir),
        };
        Ok(Ctx {
            manifest_dir,
            gen_dir,
            crate_name,
            target: ObjTarget::from_env(),
            blob_dir,
            cache: Cache::new(cache_root),
            threads,
            verbose: self.verbose,
        })
    }
}

/// Compiles every `#[npu_model]` declaration of the crate: `Config::from_env().compile()`.
pub fn compile() -> Result<Compiled, CompileError> {
    Config::from_env().compile()
}

/// What every declaration of one run shares.
struct Ctx {
    manifest_dir: PathBuf,
    gen_dir: PathBuf,
    crate_name: String,
    target: Result<ObjTarget, String>,
    /// Where `embed = "file"` blobs go (an error only matters to such declarations).
    blob_dir: Result<PathBuf, String>,
    cache: Cache,
    threads: usize,
    verbose: bool,
}

impl Ctx {
    fn log(&self, msg: impl FnOnce() -> String) {
        if self.verbose {
            println!("cargo:warning=npu-model: {}", msg());
        }
    }

    fn io(&self) -> impl Fn(std::io::Error) -> CompileError + '_ {
        move |e| CompileError::Io(format!("writing {}: {e}", self.gen_dir.display()))
    }
}

/// What a declaration that compiled leaves for the end of the run.
struct Built {
    embed: Embed,
    cache_hit: bool,
    key: Key,
    link_lib: Option<String>,
}

/// The state of a run across declarations.
#[derive(Default)]
struct Run {
    compiled: Compiled,
    names: Vec<String>,
    keep_keys: Vec<Key>,
    link_libs: Vec<String>,
}

impl Run {
    /// Writes one declaration's outcome for the attribute and remembers what it needs.
    fn record(
        &mut self,
        ctx: &Ctx,
        f: &Found,
        result: Result<Built, (Site, String)>,
    ) -> Result<(), CompileError> {
        let err = ctx.gen_dir.join(protocol::error_file(&f.name));
        let (result, cache_hit) = match result {
            Ok(b) => {
                if err.exists() {
                    std::fs::remove_file(&err).map_err(ctx.io())?;
                }
                self.keep_keys.push(b.key);
                self.link_libs.extend(b.link_lib);
                (Ok(b.embed), b.cache_hit)
            }
            Err((site, msg)) => {
                let one_line = msg.replace('\n', " ");
                println!(
                    "cargo:warning=npu-model: `{}` ({}:{}): {one_line}",
                    f.name, f.file, f.line
                );
                let text = protocol::encode_error(site, &msg);
                cache::write_if_changed(&err, text.as_bytes()).map_err(ctx.io())?;
                let rs = ctx.gen_dir.join(protocol::code_file(&f.name));
                cache::write_if_changed(&rs, codegen::error_file(&f.name, &msg).as_bytes())
                    .map_err(ctx.io())?;
                (Err(msg), false)
            }
        };
        self.compiled.models.push(ModelOutcome { name: f.name.clone(), result, cache_hit });
        Ok(())
    }

    /// Link lines, stale files, the private cache's unused entries, and the index last.
    fn finish(self, ctx: &Ctx, shared_cache: bool) -> Result<Compiled, CompileError> {
        if !self.link_libs.is_empty() {
            println!("cargo:rustc-link-search=native={}", ctx.gen_dir.display());
            for l in &self.link_libs {
                // -bundle: the rlib records the library's name instead of copying a multi-GiB
                // archive into itself; the final link finds it through the search path above,
                // which cargo passes on to every crate that links this one.
                println!("cargo:rustc-link-lib=static:-bundle={l}");
            }
        }
        remove_stale(ctx, &self.names);
        if !shared_cache {
            // The private cache keeps exactly the entries in use: a changed model does not
            // leave its old multi-hundred-MB blob behind in OUT_DIR.
            ctx.cache.retain(&self.keep_keys);
        }
        let index = protocol::encode_index(&self.names);
        cache::write_if_changed(&ctx.gen_dir.join(protocol::INDEX_FILE), index.as_bytes())
            .map_err(ctx.io())?;
        Ok(self.compiled)
    }
}

/// Each named declaration once, in discovery order, with every declaration of that name.
fn unique_names(found: &[Found]) -> Vec<(&Found, Vec<&Found>)> {
    let mut by_name: BTreeMap<&str, Vec<&Found>> = BTreeMap::new();
    for f in found {
        by_name.entry(f.name.as_str()).or_default().push(f);
    }
    let mut done = BTreeSet::new();
    found
        .iter()
        .filter(|f| !f.name.is_empty() && done.insert(f.name.as_str()))
        .map(|f| (f, by_name[f.name.as_str()].clone()))
        .collect()
}

fn duplicate_message(f: &Found, same: &[&Found]) -> String {
    let places: Vec<String> = same.iter().map(|g| format!("{}:{}", g.file, g.line)).collect();
    format!(
        "duplicate #[npu_model] name `{}` (declared at {}): each model needs its own struct name, because its generated code is OUT_DIR/npu-model/{}.rs",
        f.name,
        places.join(" and "),
        f.name
    )
}

/// Removes files in the generated directory that belong to no current declaration
/// (renamed or deleted models, leftovers of interrupted runs).
fn remove_stale(ctx: &Ctx, names: &[String]) {
    let mut own: Vec<String> = vec![protocol::INDEX_FILE.to_string(), "cache".to_string()];
    for n in names {
        for ext in ["rs", "err", "blob", "tok", "stamp", "report.json"] {
            own.push(format!("{n}.{ext}"));
        }
        if let Ok(t) = &ctx.target {
            own.push(t.static_lib_file(&declaration::lib_name(&ctx.crate_name, n)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_what_it_names() {
        let mut c = Config::new();
        assert_eq!(
            (c.cache_dir.clone(), c.threads, c.verbose, c.blob_dir.clone(), c.from_env),
            (None, None, false, None, false)
        );
        c.cache_dir("/shared/npu").threads(0).verbose(true).blob_dir("/opt/w");
        assert_eq!(c.cache_dir, Some(PathBuf::from("/shared/npu")));
        assert_eq!(c.blob_dir, Some(PathBuf::from("/opt/w")));
        assert_eq!(c.threads, Some(1), "at least one thread");
        assert!(c.verbose && !c.from_env);
    }

    #[test]
    fn duplicate_names_are_grouped_in_discovery_order() {
        let f = |name: &str, line| Found {
            name: name.into(),
            file: "src/lib.rs".into(),
            line,
            decl: Err(String::new()),
        };
        let found = [f("A", 1), f("B", 2), f("", 3), f("A", 4)];
        let u = unique_names(&found);
        let got: Vec<(&str, usize)> =
            u.iter().map(|(f, same)| (f.name.as_str(), same.len())).collect();
        assert_eq!(got, [("A", 2), ("B", 1)]);
        let msg = duplicate_message(u[0].0, &u[0].1);
        assert!(msg.contains("src/lib.rs:1 and src/lib.rs:4"), "{msg}");
    }
}
