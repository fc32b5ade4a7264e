//! Mapping a blob file (feature `std`): header and size checked against the constants the
//! program was built with, the rest mapped read-only and never parsed.

use super::{Header, HeaderError, Mismatch, HEADER_LEN};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a blob file cannot be used: the path, and the reason.
#[derive(Debug)]
pub struct BlobFileError {
    /// The file (or, for [`Reason::NoExecutable`], the file name looked for).
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: Reason,
}

/// What is wrong with a blob file.
#[derive(Debug)]
pub enum Reason {
    /// The directory of the running executable is unknown (`std::env::current_exe`).
    NoExecutable(std::io::Error),
    /// The file does not exist.
    Missing,
    /// Opening, reading or mapping it failed.
    Io(std::io::Error),
    /// Its size is not the header plus the blob this program was built for.
    Size {
        /// Bytes in the file.
        found: u64,
        /// Bytes expected.
        want: u64,
    },
    /// The header is malformed.
    Header(HeaderError),
    /// The header is well formed but describes another blob.
    Mismatch(Mismatch),
    /// The blob's SHA-256 differs from the header's ([`BlobFile::verify`]).
    Digest,
}

impl core::fmt::Display for BlobFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let p = self.path.display();
        match &self.reason {
            Reason::NoExecutable(e) => {
                write!(f, "cannot locate blob file {p}: the executable's directory is unknown ({e})")
            }
            Reason::Missing => write!(
                f,
                "blob file {p} is missing: it is written by the build beside the executable; copy it there or pass its path to load_from"
            ),
            Reason::Io(e) => write!(f, "blob file {p}: {e}"),
            Reason::Size { found, want } => write!(
                f,
                "blob file {p} has the wrong size: {found} bytes, expected {want} (header plus blob); it is truncated or from another build"
            ),
            Reason::Header(e) => write!(f, "blob file {p} has a wrong header: {e}"),
            Reason::Mismatch(m) => write!(f, "blob file {p} has a wrong header: {m}"),
            Reason::Digest => write!(
                f,
                "blob file {p} is corrupt: the SHA-256 of its blob differs from the one it was built with"
            ),
        }
    }
}

impl std::error::Error for BlobFileError {}

/// A blob file mapped read-only, its header checked.
pub struct BlobFile {
    map: memmap2::Mmap,
    path: PathBuf,
    header: Header,
}

impl core::fmt::Debug for BlobFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlobFile").field("path", &self.path).field("header", &self.header).finish()
    }
}

impl BlobFile {
    /// Opens `path` and maps it if its header equals `want` (magic, versions, length, digest)
    /// and its size is the header plus `want.blob_len`. Nothing else is read.
    pub fn open(path: impl AsRef<Path>, want: &Header) -> Result<BlobFile, BlobFileError> {
        let path = path.as_ref();
        let fail = |reason| BlobFileError { path: path.to_path_buf(), reason };
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => fail(Reason::Missing),
            _ => fail(Reason::Io(e)),
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let found = file.metadata().map_err(io)?.len();
        let mut head = [0u8; HEADER_LEN];
        let got = read_up_to(&mut file, &mut head).map_err(io)?;
        let header = Header::parse(&head[..got]).map_err(|e| fail(Reason::Header(e)))?;
        if let Some(m) = header.mismatch(want) {
            return Err(fail(Reason::Mismatch(m)));
        }
        let expected = want.blob_len.saturating_add(HEADER_LEN as u64);
        if found != expected {
            return Err(fail(Reason::Size { found, want: expected }));
        }
        // SAFETY: mapped read-only. The build replaces blob files by renaming a new file over
        // the old one, so a mapping keeps the bytes it was made with; a file edited in place
        // while mapped is outside what this type guards against.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        if map.len() as u64 != expected {
            return Err(fail(Reason::Size { found: map.len() as u64, want: expected }));
        }
        Ok(BlobFile { map, path: path.to_path_buf(), header })
    }

    /// The blob: the mapping after the header, aligned like an embedded blob.
    pub fn blob(&self) -> &[u8] {
        &self.map[HEADER_LEN..]
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header read from the file.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Hashes the whole blob and compares with the header's SHA-256 (reads every page).
    pub fn verify(&self) -> Result<(), BlobFileError> {
        let digest: [u8; 32] = Sha256::digest(self.blob()).into();
        if digest != self.header.sha256 {
            return Err(BlobFileError { path: self.path.clone(), reason: Reason::Digest });
        }
        Ok(())
    }

    /// Keeps the mapping for the rest of the process and returns the blob: what a `'static`
    /// model borrows. Costs address space, not memory (pages are the file's).
    pub fn into_static(self) -> &'static [u8] {
        let map: &'static memmap2::Mmap = Box::leak(Box::new(self.map));
        &map[HEADER_LEN..]
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Where a blob file named `file_name` is looked for: in the running executable's directory,
/// or, for a test or example binary that cargo puts in `deps/` or `examples/` under the
/// profile directory, in the profile directory when the file is not beside it.
pub fn beside_executable(file_name: &str) -> Result<PathBuf, BlobFileError> {
    let exe = std::env::current_exe().map_err(|e| BlobFileError {
        path: PathBuf::from(file_name),
        reason: Reason::NoExecutable(e),
    })?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let here = dir.join(file_name);
    let cargo_subdir = dir.file_name().is_some_and(|n| n == "deps" || n == "examples");
    match dir.parent() {
        Some(profile) if cargo_subdir && !here.exists() => Ok(profile.join(file_name)),
        _ => Ok(here),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn opens_checks_and_verifies() {
        let dir = std::env::temp_dir().join(format!("npu-blob-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let sha: [u8; 32] = Sha256::digest(&blob).into();
        let want = Header::new(blob.len() as u64, sha);
        let mut file = want.to_bytes().to_vec();
        file.extend(&blob);

        let ok = write(&dir, "ok.npublob", &file);
        let f = BlobFile::open(&ok, &want).unwrap();
        assert_eq!(f.blob(), &blob[..]);
        assert_eq!(f.blob().as_ptr() as usize % 64, 0);
        f.verify().unwrap();

        let reason = |p: &Path| BlobFile::open(p, &want).unwrap_err();
        let e = reason(&dir.join("absent.npublob"));
        assert!(matches!(e.reason, Reason::Missing), "{e}");
        assert!(e.to_string().contains("absent.npublob"), "{e}");

        let short = write(&dir, "short.npublob", &file[..file.len() - 1]);
        let e = reason(&short);
        assert!(matches!(e.reason, Reason::Size { found: 1063, want: 1064 }), "{e}");

        let mut other = file.clone();
        other[24] ^= 1;
        let e = reason(&write(&dir, "other.npublob", &other));
        assert!(matches!(e.reason, Reason::Mismatch(Mismatch::Sha256)), "{e}");

        let e = reason(&write(&dir, "tiny.npublob", b"NPU"));
        assert!(matches!(e.reason, Reason::Header(HeaderError::Short(3))), "{e}");

        let mut flipped = file.clone();
        flipped[HEADER_LEN + 500] ^= 0xff;
        let f = BlobFile::open(write(&dir, "flip.npublob", &flipped), &want).unwrap();
        let e = f.verify().unwrap_err();
        assert!(matches!(e.reason, Reason::Digest) && e.to_string().contains("flip.npublob"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
