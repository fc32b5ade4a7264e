//! [`Embed::File`](crate::declare::Embed::File): the blob is written, after its
//! [`npu_runtime::blob_file`] header, to a file beside the final executable instead of into
//! it. The generated `load()` maps it from there at run time.
//!
//! Where: the cargo profile directory (`target/<profile>` or `target/<triple>/<profile>`,
//! where cargo puts executables), found from `OUT_DIR`, which cargo places at
//! `<profile>/build/<package>-<hash>/out`. `NPU_BUILD_BLOB_DIR` or
//! `Config::blob_dir` choose another directory (then the application passes the path to
//! `load_from`). Writing outside `OUT_DIR` bends cargo's rule for build scripts, as every
//! crate that ships a file beside the executable does; the file is named after the crate and
//! the declaration, so crates and models do not collide.

use crate::cache;
use npu_runtime::blob_file::{Header, HEADER_LEN};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Extension of blob files.
pub const EXTENSION: &str = "npublob";

/// The blob file's name for declaration `decl` of crate `crate_name`.
pub fn file_name(crate_name: &str, decl: &str) -> String {
    format!("{}-{decl}.{EXTENSION}", crate_name.replace('-', "_"))
}

/// The profile directory that holds `out_dir` (`<profile>/build/<pkg>-<hash>/out`).
pub fn profile_dir(out_dir: &Path) -> Result<PathBuf, String> {
    let mut up = out_dir.ancestors();
    let (out, _pkg, build, profile) = (up.next(), up.next(), up.next(), up.next());
    let named = |p: Option<&Path>, n: &str| p.and_then(|p| p.file_name()).is_some_and(|f| f == n);
    match profile {
        Some(dir) if named(out, "out") && named(build, "build") => Ok(dir.to_path_buf()),
        _ => Err(format!(
            "cannot find the directory of the executable from OUT_DIR {} (expected <profile>/build/<package>/out): set NPU_BUILD_BLOB_DIR or Config::blob_dir for embed = \"file\"",
            out_dir.display()
        )),
    }
}

/// Whether `dest` already holds `header` followed by a blob of the header's length.
fn is_current(dest: &Path, header: &Header) -> bool {
    let Ok(mut f) = std::fs::File::open(dest) else { return false };
    let len_ok =
        f.metadata().is_ok_and(|m| m.len() == header.blob_len.saturating_add(HEADER_LEN as u64));
    let mut head = [0u8; HEADER_LEN];
    len_ok && f.read_exact(&mut head).is_ok() && head == header.to_bytes()
}

/// Writes `header` and the blob file `src` to `dest`, unless `dest` already holds them
/// (header and size equal), with `src`'s modification time. The new file is written beside
/// `dest` and renamed over it ([`cache::write_atomic`]), so a running program that maps the
/// old file keeps its bytes. Returns whether it wrote.
pub fn write(src: &Path, dest: &Path, header: &Header) -> Result<bool, String> {
    if is_current(dest, header) {
        return Ok(false);
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut wrong_len = None;
    let written = cache::write_atomic(dest, |file| {
        let mut input = std::fs::File::open(src)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut *file);
        out.write_all(&header.to_bytes())?;
        let copied = std::io::copy(&mut input, &mut out)?;
        out.flush()?;
        drop(out);
        if copied != header.blob_len {
            wrong_len = Some(copied);
            return Err(std::io::Error::other("length mismatch"));
        }
        // The source's time, which predates this build script run: cargo, told to rerun
        // when the file changes, then reruns when it is deleted or replaced, not because
        // it was just written.
        file.set_modified(input.metadata()?.modified()?)
    });
    match (written, wrong_len) {
        (Err(_), Some(n)) => Err(format!(
            "the packed blob {} has {n} bytes, its cache entry says {}",
            src.display(),
            header.blob_len
        )),
        (Err(e), None) => Err(format!("writing the blob file {}: {e}", dest.display())),
        (Ok(()), _) => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_dir_from_out_dir() {
        let out = Path::new("/t/target/aarch64-unknown-linux-gnu/release/build/app-0123/out");
        assert_eq!(
            profile_dir(out).unwrap(),
            Path::new("/t/target/aarch64-unknown-linux-gnu/release")
        );
        assert!(profile_dir(Path::new("/tmp/out")).unwrap_err().contains("NPU_BUILD_BLOB_DIR"));
        assert_eq!(file_name("my-app", "Big"), "my_app-Big.npublob");
    }

    #[test]
    fn writes_once_and_replaces_a_stale_file() {
        let dir = std::env::temp_dir().join(format!("npu-embed-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("blob");
        std::fs::write(&src, [1u8, 2, 3]).unwrap();
        let dest = dir.join("x.npublob");
        let h = Header::new(3, [9; 32]);
        assert!(write(&src, &dest, &h).unwrap());
        assert!(!write(&src, &dest, &h).unwrap(), "unchanged: not rewritten");
        let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(mtime(&dest), mtime(&src));
        let bytes = std::fs::read(&dest).unwrap();
        assert_eq!(
            (bytes.len(), &bytes[..HEADER_LEN], &bytes[HEADER_LEN..]),
            (67, &h.to_bytes()[..], &[1u8, 2, 3][..])
        );
        let h2 = Header::new(3, [8; 32]);
        assert!(write(&src, &dest, &h2).unwrap(), "another digest: rewritten");
        let wrong = Header::new(4, [8; 32]);
        assert!(write(&src, &dest, &wrong).unwrap_err().contains("3 bytes"));
        assert_eq!(std::fs::read(&dest).unwrap()[..HEADER_LEN], h2.to_bytes(), "kept on failure");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
