//! The `#[npu_model(...)]` attribute's arguments: parsing and validation.
//!
//! This module is shared by the attribute macro (`npu-model-macro`, which depends on this
//! crate) and the build script (`npu_build::compile()`, which finds the same attributes in
//! the crate's sources). One parser means one set of names, defaults and messages: the macro
//! reports what it can check alone (names, kinds, syntax) at the exact argument's span; the
//! build script checks what needs the file (it exists, its architecture, its tensor types).
//! Target and scheme names come from `npu_runtime` ([`Target::by_name`], [`Scheme::parse`]),
//! so they are listed once in the whole project.
//!
//! ```text
//! #[npu_model(path = "models/smollm2.gguf", target = "rk3588", quant = "int4_hadamard")]
//! pub struct SmolLm;
//! ```
//!
//! Arguments:
//!
//! | argument | required | meaning |
//! |---|---|---|
//! | `path = "..."` | yes | the GGUF file, relative to `CARGO_MANIFEST_DIR`; may start with `${VAR}/` |
//! | `target = "..."` | yes | a target profile name (`rk3588`, `rk3576`, `rk3566`, `rk3568`, `cpu`) |
//! | `quant = "..."` | yes | a scheme (`fp16`, `int8`, `int8_hadamard`, `int4`, `int4_hadamard`) |
//! | `context = N` | no, [`DEFAULT_CONTEXT`] | tokens of KV cache the arena is sized for |
//! | `embed = "auto" \| "bytes" \| "object" \| "file"` | no, `auto` | how the blob reaches the binary ([`Embed`]) |

use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Ident, LitInt, LitStr};

/// Context length used when the attribute gives none: enough for a chat turn, small enough
/// that the KV cache of a 0.5B model stays a few MiB.
pub const DEFAULT_CONTEXT: u32 = 512;

/// Largest `context` accepted by the attribute (the build script also caps it at the
/// model's trained context length).
pub const MAX_CONTEXT: u32 = 1 << 20;

/// Blobs up to this size are embedded with the aligned `include_bytes!` pattern when
/// `embed = "auto"`; larger ones through a linked object file. At ~0.15 s and ~14 bytes of
/// rustc memory per blob byte (measured, see the workspace notes), 16 MiB costs about 2 s and
/// 220 MB: acceptable for firmware-sized models, not for LLM weights.
pub const AUTO_OBJECT_THRESHOLD: u64 = 16 << 20;

/// The argument names, in the order they are documented.
pub const ARGUMENTS: [&str; 5] = ["path", "target", "quant", "context", "embed"];

/// How the packed blob gets into the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Embed {
    /// [`Embed::Bytes`] up to [`AUTO_OBJECT_THRESHOLD`] bytes, [`Embed::Object`] above.
    Auto,
    /// `include_bytes!` into a 64-byte aligned static: rustc holds the bytes (fine for
    /// small firmware models; slow and memory hungry for large ones).
    Bytes,
    /// An object file written by the build script, archived as a static library and linked:
    /// rustc never sees the bytes.
    Object,
    /// Not linked: a file beside the executable (header + blob, `npu_runtime::blob_file`),
    /// mapped at run time by the generated `load()`. For blobs no linker can place.
    File,
}

impl Embed {
    /// Every mode, in documentation order.
    pub const ALL: [Embed; 4] = [Embed::Auto, Embed::Bytes, Embed::Object, Embed::File];

    /// The name used in the attribute.
    pub const fn name(self) -> &'static str {
        match self {
            Embed::Auto => "auto",
            Embed::Bytes => "bytes",
            Embed::Object => "object",
            Embed::File => "file",
        }
    }

    /// The mode actually used for a blob of `len` bytes.
    pub const fn resolve(self, len: u64) -> Embed {
        match self {
            Embed::Auto if len <= AUTO_OBJECT_THRESHOLD => Embed::Bytes,
            Embed::Auto => Embed::Object,
            other => other,
        }
    }
}

/// Where each argument was written, for error messages at the right place.
#[derive(Clone, Copy, Debug)]
pub struct Spans {
    /// The whole attribute (the call site).
    pub attr: Span,
    /// The struct's name.
    pub name: Span,
    /// The `path` value.
    pub path: Span,
    /// The `target` value.
    pub target: Span,
    /// The `quant` value.
    pub quant: Span,
    /// The `context` value (the attribute when absent).
    pub context: Span,
    /// The `embed` value (the attribute when absent).
    pub embed: Span,
}

/// A checked declaration: one `#[npu_model]` on one unit struct.
#[derive(Clone, Debug)]
pub struct Declaration {
    /// The struct's name; also the name of the generated file (`OUT_DIR/npu-model/<name>.rs`).
    pub name: String,
    /// `path` as written (before `${VAR}` expansion).
    pub path: String,
    /// The target profile.
    pub target: &'static Target,
    /// The scheme.
    pub scheme: Scheme,
    /// Tokens of context the arena is sized for.
    pub context: u32,
    /// Whether `context` was given (otherwise the build script may lower the default to the
    /// model's trained context).
    pub context_given: bool,
    /// How to embed the blob.
    pub embed: Embed,
    /// Source locations.
    pub spans: Spans,
}

/// Which argument a build-time error is about: the macro puts the message there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Site {
    /// The whole attribute.
    Attr,
    /// The struct's name.
    Name,
    /// The `path` value.
    Path,
    /// The `quant` value.
    Quant,
    /// The `context` value.
    Context,
    /// The `embed` value.
    Embed,
}

impl Site {
    /// Every site, in a fixed order.
    pub const ALL: [Site; 6] =
        [Site::Attr, Site::Name, Site::Path, Site::Quant, Site::Context, Site::Embed];

    /// A stable one-word name (written in the status file the build script leaves for the
    /// macro).
    pub const fn name(self) -> &'static str {
        match self {
            Site::Attr => "attr",
            Site::Name => "name",
            Site::Path => "path",
            Site::Quant => "quant",
            Site::Context => "context",
            Site::Embed => "embed",
        }
    }

    /// Parses [`Site::name`].
    pub fn parse(s: &str) -> Option<Site> {
        Site::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The span of this site in a declaration.
    pub fn span(self, s: &Spans) -> Span {
        match self {
            Site::Attr => s.attr,
            Site::Name => s.name,
            Site::Path => s.path,
            Site::Quant => s.quant,
            Site::Context => s.context,
            Site::Embed => s.embed,
        }
    }
}

/// The attribute's arguments as written, before any check.
#[derive(Default)]
struct RawArgs {
    path: Option<LitStr>,
    target: Option<LitStr>,
    quant: Option<LitStr>,
    context: Option<LitInt>,
    embed: Option<LitStr>,
}

impl RawArgs {
    /// Reads `key = literal` pairs: each known key once, with a literal of its kind.
    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<RawArgs> {
        let mut raw = RawArgs::default();
        let parser = syn::meta::parser(|meta| {
            let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
            let slot_str = match key.as_str() {
                "path" => Some(&mut raw.path),
                "target" => Some(&mut raw.target),
                "quant" => Some(&mut raw.quant),
                "embed" => Some(&mut raw.embed),
                _ => None,
            };
            if let Some(slot) = slot_str {
                if slot.is_some() {
                    return Err(meta.error(format!("`{key}` is given twice")));
                }
                *slot = Some(meta.value()?.parse::<LitStr>().map_err(|e| {
                    let eg = example(&key);
                    let msg = format!("`{key}` takes a string literal, e.g. `{key} = \"{eg}\"`");
                    syn::Error::new(e.span(), msg)
                })?);
                return Ok(());
            }
            if key == "context" {
                if raw.context.is_some() {
                    return Err(meta.error("`context` is given twice"));
                }
                raw.context = Some(meta.value()?.parse::<LitInt>().map_err(|e| {
                    let msg = "`context` takes an integer literal, e.g. `context = 512`";
                    syn::Error::new(e.span(), msg)
                })?);
                return Ok(());
            }
            let shown = if key.is_empty() { quote_path(&meta.path) } else { key.clone() };
            Err(meta.error(unknown("argument", &shown, &ARGUMENTS)))
        });
        syn::parse::Parser::parse2(parser, tokens)?;
        Ok(raw)
    }
}

/// Parses and checks the attribute's arguments (the tokens inside `#[npu_model(...)]`) for
/// the struct `name`. `attr_span` is where to report a missing argument.
pub fn parse_args(
    tokens: proc_macro2::TokenStream,
    name: &Ident,
    attr_span: Span,
) -> syn::Result<Declaration> {
    let RawArgs { path, target, quant, context, embed } = RawArgs::parse(tokens)?;
    let missing = |what: &str| {
        syn::Error::new(
            attr_span,
            format!(
                "#[npu_model] needs `{what}`: e.g. #[npu_model(path = \"models/model.gguf\", target = \"rk3588\", quant = \"int8\")]"
            ),
        )
    };
    let path = path.ok_or_else(|| missing("path"))?;
    let target = target.ok_or_else(|| missing("target"))?;
    let quant = quant.ok_or_else(|| missing("quant"))?;

    check_path(&path.value()).map_err(|m| syn::Error::new(path.span(), m))?;
    let (t, s) = target_and_scheme(&target, &quant)?;

    let (ctx, ctx_span) = context_arg(context.as_ref(), attr_span)?;
    let (emb, emb_span) = embed_arg(embed.as_ref(), attr_span)?;
    Ok(Declaration {
        name: name.to_string(),
        path: path.value(),
        target: t,
        scheme: s,
        context: ctx,
        context_given: context.is_some(),
        embed: emb,
        spans: Spans {
            attr: attr_span,
            name: name.span(),
            path: path.span(),
            target: target.span(),
            quant: quant.span(),
            context: ctx_span,
            embed: emb_span,
        },
    })
}

/// The `context` value (checked) and its span; the default at the attribute when absent.
fn context_arg(context: Option<&LitInt>, attr_span: Span) -> syn::Result<(u32, Span)> {
    Ok(match context {
        Some(lit) => {
            let v: u64 = lit
                .base10_parse()
                .map_err(|_| syn::Error::new(lit.span(), "`context` must be a positive integer"))?;
            if v == 0 || v > MAX_CONTEXT as u64 {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("`context` must be between 1 and {MAX_CONTEXT}, got {v}"),
                ));
            }
            (v as u32, lit.span())
        }
        None => (DEFAULT_CONTEXT, attr_span),
    })
}

/// The `embed` mode and its span; `auto` at the attribute when absent.
fn embed_arg(embed: Option<&LitStr>, attr_span: Span) -> syn::Result<(Embed, Span)> {
    let embed_names: Vec<&str> = Embed::ALL.iter().map(|e| e.name()).collect();
    Ok(match embed {
        Some(lit) => {
            let e = Embed::ALL.into_iter().find(|e| e.name() == lit.value()).ok_or_else(|| {
                syn::Error::new(lit.span(), unknown("embed mode", &lit.value(), &embed_names))
            })?;
            (e, lit.span())
        }
        None => (Embed::Auto, attr_span),
    })
}

/// The target and scheme the `target` and `quant` values name, if the target runs it.
fn target_and_scheme(target: &LitStr, quant: &LitStr) -> syn::Result<(&'static Target, Scheme)> {
    let target_names: Vec<&str> = Target::all().iter().map(|t| t.name).collect();
    let t = Target::by_name(&target.value()).ok_or_else(|| {
        syn::Error::new(target.span(), unknown("target", &target.value(), &target_names))
    })?;
    let scheme_names: Vec<&str> = Scheme::ALL.iter().map(|s| s.name()).collect();
    let s = Scheme::parse(&quant.value()).ok_or_else(|| {
        syn::Error::new(quant.span(), unknown("quant", &quant.value(), &scheme_names))
    })?;
    t.scheme_spec(s).map_err(|e| syn::Error::new(quant.span(), e.to_string()))?;
    Ok((t, s))
}

/// Checks that the item is a unit struct without generics (the generated code implements
/// items on it by name) and returns its name.
pub fn check_item(item: &syn::Item) -> syn::Result<&Ident> {
    match item {
        syn::Item::Struct(s) => {
            if !matches!(s.fields, syn::Fields::Unit) {
                return Err(syn::Error::new(
                    s.fields.span(),
                    format!("#[npu_model] goes on a unit struct: write `struct {};`", s.ident),
                ));
            }
            if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
                return Err(syn::Error::new(
                    s.generics.span(),
                    "#[npu_model] structs cannot be generic",
                ));
            }
            Ok(&s.ident)
        }
        other => Err(syn::Error::new(
            item_keyword_span(other),
            "#[npu_model] goes on a unit struct, e.g. `pub struct MyModel;`",
        )),
    }
}

fn item_keyword_span(item: &syn::Item) -> Span {
    match item {
        syn::Item::Enum(i) => i.enum_token.span,
        syn::Item::Fn(i) => i.sig.fn_token.span,
        syn::Item::Union(i) => i.union_token.span,
        syn::Item::Mod(i) => i.mod_token.span,
        syn::Item::Trait(i) => i.trait_token.span,
        syn::Item::Impl(i) => i.impl_token.span,
        syn::Item::Const(i) => i.const_token.span,
        syn::Item::Static(i) => i.static_token.span,
        syn::Item::Type(i) => i.type_token.span,
        other => other.span(),
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "path" => "models/model.gguf",
        "target" => "rk3588",
        "quant" => "int8",
        _ => "auto",
    }
}

fn quote_path(p: &syn::Path) -> String {
    p.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

/// Syntax of `path`: non-empty; a leading `${VAR}` must be closed and name a plausible
/// environment variable. Expansion happens in the build script ([`resolve_path`]).
pub fn check_path(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("`path` is empty: give the GGUF file relative to the crate's Cargo.toml".into());
    }
    split_env(raw).map(|_| ())
}

/// Splits `${VAR}/rest` into `(Some(VAR), rest)`; other paths into `(None, raw)`.
pub(crate) fn split_env(raw: &str) -> Result<(Option<&str>, &str), String> {
    let Some(after) = raw.strip_prefix("${") else {
        if raw.contains("${") {
            return Err(
                "`${VAR}` may only start `path`, e.g. `path = \"${NPU_CACHE}/model.gguf\"`".into(),
            );
        }
        return Ok((None, raw));
    };
    let Some(end) = after.find('}') else {
        return Err("`${` in `path` is not closed: write `${VAR}/file.gguf`".into());
    };
    let var = &after[..end];
    let ok = !var.is_empty()
        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !var.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(format!("`${{{var}}}` in `path` is not an environment variable name"));
    }
    let rest = &after[end + 1..];
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.contains("${") {
        return Err(
            "`${VAR}` may only start `path`, e.g. `path = \"${NPU_CACHE}/model.gguf\"`".into()
        );
    }
    Ok((Some(var), rest))
}

/// A resolved `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPath {
    /// The file to read.
    pub file: std::path::PathBuf,
    /// The environment variable it depends on, if any (the build script declares it with
    /// `rerun-if-env-changed`).
    pub env_var: Option<String>,
}

/// Resolves `path`: a leading `${VAR}` is replaced by the variable's value (through `env`, so
/// callers decide where variables come from), the rest is taken relative to `manifest_dir`
/// unless absolute.
pub fn resolve_path(
    raw: &str,
    manifest_dir: &std::path::Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedPath, String> {
    check_path(raw)?;
    let (var, rest) = split_env(raw)?;
    match var {
        Some(v) => {
            let base = env(v).filter(|s| !s.is_empty()).ok_or_else(|| {
                format!("`path` starts with `${{{v}}}` but the environment variable `{v}` is not set for this build")
            })?;
            let base = std::path::Path::new(&base);
            let base =
                if base.is_absolute() { base.to_path_buf() } else { manifest_dir.join(base) };
            Ok(ResolvedPath { file: base.join(rest), env_var: Some(v.to_string()) })
        }
        None => Ok(ResolvedPath { file: manifest_dir.join(rest), env_var: None }),
    }
}

/// The message for an unknown name: the valid ones, and the nearest if it is close.
pub fn unknown(what: &str, got: &str, valid: &[&str]) -> String {
    let mut msg = format!("unknown {what} `{got}`");
    if let Some(near) = nearest(got, valid) {
        msg.push_str(&format!(" (did you mean `{near}`?)"));
    }
    msg.push_str(&format!("; valid {what}s: {}", valid.join(", ")));
    msg
}

/// The valid name closest to `got` by edit distance (case-insensitive), if it is close
/// enough to be a plausible typo: at most a third of the longer name's length, at least 1;
/// or the only valid name that `got` abbreviates (`obj` → `object`).
pub fn nearest<'v>(got: &str, valid: &[&'v str]) -> Option<&'v str> {
    let g = got.to_ascii_lowercase();
    let prefixed: Vec<&str> = valid
        .iter()
        .copied()
        .filter(|v| g.len() >= 2 && v.to_ascii_lowercase().starts_with(&g))
        .collect();
    if let [only] = prefixed[..] {
        return Some(only);
    }
    let mut best: Option<(usize, &str)> = None;
    for &v in valid {
        let d = edit_distance(&g, &v.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, v));
        }
    }
    let (d, v) = best?;
    let limit = (g.chars().count().max(v.chars().count()) / 3).max(1);
    (d <= limit).then_some(v)
}

/// Levenshtein distance with adjacent transpositions counted as one edit (`int4_hadmard`,
/// `rk3858` are typical typos), over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: the transposition case looks two rows back.
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> Result<Declaration, String> {
        let name = Ident::new("M", Span::call_site());
        parse_args(tokens, &name, Span::call_site()).map_err(|e| e.to_string())
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("rk3588", "rk3588"), 0);
        assert_eq!(edit_distance("rk3858", "rk3588"), 1);
        assert_eq!(edit_distance("int4_hadmard", "int4_hadamard"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(nearest("rk3589", &["rk3588", "rk3576", "cpu"]), Some("rk3588"));
        assert_eq!(nearest("INT8", &["fp16", "int8"]), Some("int8"));
        assert_eq!(nearest("tpu", &["rk3588", "cpu"]), Some("cpu"));
        assert_eq!(nearest("gpu_cluster", &["rk3588", "cpu"]), None);
    }

    #[test]
    fn full_declaration() {
        let d = parse(quote!(
            path = "m.gguf",
            target = "rk3588",
            quant = "int4_hadamard",
            context = 2048,
            embed = "object"
        ))
        .unwrap();
        assert_eq!(
            (d.name.as_str(), d.path.as_str(), d.target.name, d.scheme),
            ("M", "m.gguf", "rk3588", Scheme::Int4Hadamard)
        );
        assert_eq!((d.context, d.context_given, d.embed), (2048, true, Embed::Object));
        let d = parse(quote!(path = "m.gguf", target = "cpu", quant = "fp16")).unwrap();
        assert_eq!((d.context, d.context_given, d.embed), (DEFAULT_CONTEXT, false, Embed::Auto));
    }

    #[test]
    fn messages() {
        let e = parse(quote!(path = "m.gguf", target = "rk3589", quant = "int8")).unwrap_err();
        assert_eq!(e, "unknown target `rk3589` (did you mean `rk3588`?); valid targets: rk3588, rk3576, rk3566, rk3568, cpu");
        let e = parse(quote!(path = "m.gguf", target = "cpu", quant = "q4_0")).unwrap_err();
        assert_eq!(
            e,
            "unknown quant `q4_0`; valid quants: fp16, int8, int8_hadamard, int4, int4_hadamard"
        );
        let e = parse(quote!(path = "m.gguf", target = "rk3566", quant = "int4")).unwrap_err();
        assert_eq!(
            e,
            "target `rk3566` cannot run quant `int4`; it supports: fp16, int8, int8_hadamard"
        );
        let e =
            parse(quote!(path = "m.gguf", target = "cpu", quant = "int8", contxt = 5)).unwrap_err();
        assert!(e.starts_with("unknown argument `contxt` (did you mean `context`?)"), "{e}");
        let e = parse(quote!(target = "cpu", quant = "int8")).unwrap_err();
        assert!(e.starts_with("#[npu_model] needs `path`"), "{e}");
        let e = parse(quote!(path = "a", path = "b", target = "cpu", quant = "int8")).unwrap_err();
        assert_eq!(e, "`path` is given twice");
        let e = parse(quote!(path = "m.gguf", target = "cpu", quant = "int8", context = 0))
            .unwrap_err();
        assert!(e.starts_with("`context` must be between 1 and"), "{e}");
        let e = parse(quote!(path = "m.gguf", target = "cpu", quant = "int8", embed = "obj"))
            .unwrap_err();
        assert!(e.starts_with("unknown embed mode `obj` (did you mean `object`?)"), "{e}");
        let e = parse(quote!(path = 5, target = "cpu", quant = "int8")).unwrap_err();
        assert!(e.starts_with("`path` takes a string literal"), "{e}");
    }

    #[test]
    fn paths() {
        let dir = std::path::Path::new("/crate");
        let env = |v: &str| (v == "NPU_CACHE").then(|| "/cache".to_string());
        let r = resolve_path("${NPU_CACHE}/m.gguf", dir, env).unwrap();
        assert_eq!(
            r,
            ResolvedPath { file: "/cache/m.gguf".into(), env_var: Some("NPU_CACHE".into()) }
        );
        assert_eq!(
            resolve_path("models/m.gguf", dir, env).unwrap().file,
            std::path::PathBuf::from("/crate/models/m.gguf")
        );
        let e = resolve_path("${HOME_X}/m.gguf", dir, env).unwrap_err();
        assert!(e.contains("`HOME_X` is not set"), "{e}");
        assert!(check_path("${NPU_CACHE/m.gguf").is_err());
        assert!(check_path("a/${X}/m.gguf").is_err());
        assert!(check_path("${1X}/m.gguf").is_err());
    }

    #[test]
    fn embed_auto_threshold() {
        assert_eq!(Embed::Auto.resolve(AUTO_OBJECT_THRESHOLD), Embed::Bytes);
        assert_eq!(Embed::Auto.resolve(AUTO_OBJECT_THRESHOLD + 1), Embed::Object);
        assert_eq!(Embed::Bytes.resolve(u64::MAX), Embed::Bytes);
    }
}
