//! Finds `#[npu_model]` declarations by parsing the crate's own sources with syn.
//!
//! Roots, in this order: `src/lib.rs`, `src/main.rs`, then `src/bin/*.rs` and
//! `src/bin/*/main.rs` sorted by path. From each root the walk follows `mod name;` items the
//! way rustc does (`name.rs` or `name/mod.rs` in the module's directory, `#[path = "..."]`
//! honoured) and descends into inline `mod name { ... }` blocks. Items are visited in source
//! order, files at most once, so the result is the same on every machine.
//!
//! A file that does not parse is skipped (rustc will report the syntax error itself), but it
//! is still listed in [`Discovery::files`] so cargo reruns the build script once it is fixed.
//! Declarations produced by other macros, or written in files no `mod` item reaches, are not
//! found; the attribute then reports that npu-build did not see it.

use crate::declare::{self, Declaration};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One `#[npu_model]` attribute found in the sources.
#[derive(Clone, Debug)]
pub struct Found {
    /// The struct's name (or, for an attribute on something else, the item's name if any).
    pub name: String,
    /// Source file, relative to the manifest directory, with `/` separators.
    pub file: String,
    /// 1-based line of the attribute.
    pub line: usize,
    /// The parsed declaration, or the message the macro will report for it.
    pub decl: Result<Declaration, String>,
}

/// What a scan found.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// Every declaration, in walk order.
    pub found: Vec<Found>,
    /// Every file read (absolute), in walk order: each gets `rerun-if-changed`.
    pub files: Vec<PathBuf>,
    /// Directories whose listing decides the roots (`src/bin`), for `rerun-if-changed`.
    pub dirs: Vec<PathBuf>,
}

/// Scans the crate rooted at `manifest_dir`.
pub fn discover(manifest_dir: &Path) -> Discovery {
    let src = manifest_dir.join("src");
    let mut roots = Vec::new();
    for r in ["lib.rs", "main.rs"] {
        let p = src.join(r);
        if p.is_file() {
            roots.push(p);
        }
    }
    let bin = src.join("bin");
    let mut d = Discovery::default();
    if bin.is_dir() {
        d.dirs.push(bin.clone());
        let mut bins = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&bin) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "rs") && p.is_file() {
                    bins.push(p);
                } else if p.join("main.rs").is_file() {
                    bins.push(p.join("main.rs"));
                }
            }
        }
        // read_dir order is the filesystem's: sort so the walk order is stable.
        bins.sort();
        roots.extend(bins);
    }
    let mut seen = BTreeSet::new();
    for root in roots {
        let dir = root.parent().map(Path::to_path_buf).unwrap_or_default();
        walk_file(manifest_dir, &root, &dir, &mut seen, &mut d);
    }
    d
}

fn walk_file(
    manifest_dir: &Path,
    file: &Path,
    mod_dir: &Path,
    seen: &mut BTreeSet<PathBuf>,
    d: &mut Discovery,
) {
    if !seen.insert(file.to_path_buf()) {
        return;
    }
    d.files.push(file.to_path_buf());
    let Ok(text) = std::fs::read_to_string(file) else { return };
    let Ok(ast) = syn::parse_file(&text) else { return };
    let rel = file.strip_prefix(manifest_dir).unwrap_or(file);
    let rel =
        rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    walk_items(manifest_dir, &rel, file, &ast.items, mod_dir, seen, d);
}

fn walk_items(
    manifest_dir: &Path,
    rel: &str,
    file: &Path,
    items: &[syn::Item],
    mod_dir: &Path,
    seen: &mut BTreeSet<PathBuf>,
    d: &mut Discovery,
) {
    for item in items {
        if let Some(attr) = npu_attr(item_attrs(item)) {
            d.found.push(found(rel, item, attr));
        }
        let syn::Item::Mod(m) = item else { continue };
        let name = m.ident.to_string();
        let path_attr = m.attrs.iter().find_map(|a| {
            if !a.path().is_ident("path") {
                return None;
            }
            match &a.meta {
                syn::Meta::NameValue(nv) => match &nv.value {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
                    _ => None,
                },
                _ => None,
            }
        });
        match &m.content {
            Some((_, inner)) => {
                // Inline module: its children live in `mod_dir/name/` (or the #[path] dir).
                let sub = match &path_attr {
                    Some(p) => mod_dir.join(p),
                    None => mod_dir.join(&name),
                };
                walk_items(manifest_dir, rel, file, inner, &sub, seen, d);
            }
            None => {
                let (target, sub_dir) = match &path_attr {
                    Some(p) => {
                        // #[path] on a file module is relative to the current file's directory.
                        let base = file.parent().unwrap_or(mod_dir);
                        let t = base.join(p);
                        let sd = t.parent().map(Path::to_path_buf).unwrap_or_default();
                        (Some(t), sd)
                    }
                    None => {
                        let flat = mod_dir.join(format!("{name}.rs"));
                        let nested = mod_dir.join(&name).join("mod.rs");
                        if flat.is_file() {
                            (Some(flat), mod_dir.join(&name))
                        } else if nested.is_file() {
                            (Some(nested), mod_dir.join(&name))
                        } else {
                            (None, PathBuf::new())
                        }
                    }
                };
                if let Some(t) = target {
                    walk_file(manifest_dir, &t, &sub_dir, seen, d);
                }
            }
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        _ => &[],
    }
}

/// The `#[npu_model]` attribute among `attrs`: any path whose last segment is `npu_model`
/// (`npu_model`, `npu_model_macro::npu_model`).
fn npu_attr(attrs: &[syn::Attribute]) -> Option<&syn::Attribute> {
    attrs.iter().find(|a| a.path().segments.last().is_some_and(|s| s.ident == "npu_model"))
}

fn found(rel: &str, item: &syn::Item, attr: &syn::Attribute) -> Found {
    use syn::spanned::Spanned;
    let line = attr.span().start().line;
    let decl = declare::check_item(item).map_err(|e| e.to_string()).and_then(|ident| {
        let tokens = match &attr.meta {
            syn::Meta::List(l) => l.tokens.clone(),
            _ => proc_macro2::TokenStream::new(),
        };
        declare::parse_args(tokens, ident, attr.span()).map_err(|e| e.to_string())
    });
    let name = match item {
        syn::Item::Struct(s) => s.ident.to_string(),
        syn::Item::Enum(e) => e.ident.to_string(),
        syn::Item::Fn(f) => f.sig.ident.to_string(),
        _ => String::new(),
    };
    Found { name, file: rel.to_string(), line, decl }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn follows_modules_in_order() {
        let root = std::env::temp_dir().join(format!("npu-discover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let decl = |n: &str| {
            format!("#[npu_model(path = \"m.gguf\", target = \"cpu\", quant = \"int8\")]\npub struct {n};\n")
        };
        write(&root, "src/lib.rs", &format!("mod a;\nmod b;\nmod inline {{ mod deep; {} }}\n#[path = \"other/x.rs\"] mod x;\nmod missing;\n{}", decl("I"), decl("L")));
        write(&root, "src/a.rs", &format!("mod child;\n{}", decl("A")));
        write(&root, "src/a/child.rs", &decl("C"));
        write(&root, "src/b/mod.rs", &decl("B"));
        write(&root, "src/inline/deep.rs", &decl("D"));
        write(&root, "src/other/x.rs", &decl("X"));
        write(&root, "src/bin/z.rs", &decl("Z"));
        write(&root, "src/bin/y/main.rs", &format!("fn f( {{\n{}", decl("Broken")));
        write(&root, "src/unreached.rs", &decl("U"));
        let d = discover(&root);
        let names: Vec<_> = d.found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["C", "A", "B", "D", "I", "X", "L", "Z"]);
        assert!(d.found.iter().all(|f| f.decl.is_ok()));
        let a = &d.found[1];
        assert_eq!((a.file.as_str(), a.line), ("src/a.rs", 2));
        // The unparsable bin is still tracked; the unreached file is not.
        assert!(d.files.iter().any(|f| f.ends_with("bin/y/main.rs")));
        assert!(!d.files.iter().any(|f| f.ends_with("unreached.rs")));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn reports_bad_items() {
        let root = std::env::temp_dir().join(format!("npu-discover-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(&root, "src/lib.rs", "#[npu_model_macro::npu_model(path = \"m.gguf\", target = \"cpu\", quant = \"int8\")]\npub struct S(u8);\n#[npu_model]\npub struct T;\n");
        let d = discover(&root);
        assert_eq!(d.found.len(), 2);
        assert!(d.found[0].decl.as_ref().unwrap_err().contains("unit struct"));
        assert!(d.found[1].decl.as_ref().unwrap_err().contains("needs `path`"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
