//! The files through which the build script talks to the `#[npu_model]` attribute, all in
//! `OUT_DIR/npu-model/`:
//!
//! | file | written by the build script | read by the attribute |
//! |---|---|---|
//! | `index` | at the end of every run: the declaration names, one a line | exists: npu-build ran in this crate |
//! | `<Name>.rs` | the generated code (or a `compile_error!` if the declaration failed) | `include!`d by the expansion |
//! | `<Name>.err` | only when the declaration failed: the [`Site`] name, a newline, the message | the message, shown at that argument |
//!
//! Errors travel this way, not as a panicking build script, so rustc shows them under the
//! attribute instead of as a backtrace. Every file is rewritten on each build-script run,
//! which always recompiles the crate that declares the models.

use crate::declare::Site;
use std::path::{Path, PathBuf};

/// Subdirectory of `OUT_DIR` holding everything npu-build writes.
pub const OUT_SUBDIR: &str = "npu-model";

/// File that marks a completed build-script run; tells "build.rs does not call npu-build"
/// from "this declaration was not found".
pub const INDEX_FILE: &str = "index";

/// `OUT_DIR/npu-model`.
pub fn gen_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(OUT_SUBDIR)
}

/// The generated code's file name for declaration `name`.
pub fn code_file(name: &str) -> String {
    format!("{name}.rs")
}

/// The error file's name for declaration `name`.
pub fn error_file(name: &str) -> String {
    format!("{name}.err")
}

/// The error file's contents.
pub fn encode_error(site: Site, msg: &str) -> String {
    format!("{}\n{msg}", site.name())
}

/// Parses [`encode_error`]; an unknown site reads as [`Site::Attr`].
pub fn decode_error(text: &str) -> (Site, &str) {
    let (site, msg) = text.split_once('\n').unwrap_or(("attr", text));
    (Site::parse(site).unwrap_or(Site::Attr), msg)
}

/// The index file's contents for the declarations `names`.
pub fn encode_index(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// What the build script left for one declaration, as the attribute sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// No build-script run of npu-build finished in this `OUT_DIR`.
    NotRun,
    /// The declaration failed: where and why.
    Failed(Site, String),
    /// npu-build ran but did not see this declaration.
    NotFound,
    /// The generated code is in place.
    Ready,
}

/// The status of declaration `name` in `OUT_DIR` `out_dir`.
pub fn status(out_dir: &Path, name: &str) -> Status {
    let dir = gen_dir(out_dir);
    if !dir.join(INDEX_FILE).is_file() {
        return Status::NotRun;
    }
    if let Ok(text) = std::fs::read_to_string(dir.join(error_file(name))) {
        let (site, msg) = decode_error(&text);
        return Status::Failed(site, msg.to_string());
    }
    if dir.join(code_file(name)).is_file() {
        Status::Ready
    } else {
        Status::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips() {
        for site in Site::ALL {
            let text = encode_error(site, "bad\nsecond line");
            assert_eq!(decode_error(&text), (site, "bad\nsecond line"));
        }
        assert_eq!(decode_error("no newline"), (Site::Attr, "no newline"));
    }

    #[test]
    fn statuses() {
        let out = std::env::temp_dir().join(format!("npu-protocol-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let dir = gen_dir(&out);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(status(&out, "M"), Status::NotRun);
        std::fs::write(dir.join(INDEX_FILE), encode_index(&["M".into()])).unwrap();
        assert_eq!(status(&out, "M"), Status::NotFound);
        std::fs::write(dir.join(code_file("M")), "").unwrap();
        assert_eq!(status(&out, "M"), Status::Ready);
        std::fs::write(dir.join(error_file("M")), encode_error(Site::Path, "gone")).unwrap();
        assert_eq!(status(&out, "M"), Status::Failed(Site::Path, "gone".into()));
        let _ = std::fs::remove_dir_all(&out);
    }
}
