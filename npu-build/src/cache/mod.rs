//! Content-hash keyed cache of packed models.
//!
//! Cargo reruns a build script when a `rerun-if-changed` file's mtime moves, so `touch
//! model.gguf` or a fresh checkout of the same bytes reruns the build script. The work it
//! would redo (dequantize, quantize, pack: seconds to minutes) is keyed here by a SHA-256 of
//! everything the packed output depends on: the model file's bytes, the target and scheme,
//! the format version, npu-build's version and the build script executable itself (so a
//! changed packer invalidates the cache even without a version bump). Hashing the file is the
//! only cost of a hit: SHA-256 runs at memory speed with the SHA extensions x86-64 and ARMv8
//! cores have (measured in `scripts/bench-build.sh`).
//!
//! Entries are directories `<root>/<key hex>/`, made complete in a temporary directory and
//! renamed into place, so a crash or a parallel build never leaves a half-written entry that
//! a later run would trust. The root is `OUT_DIR/npu-model/cache` (per profile and target,
//! as cargo requires) unless `NPU_BUILD_CACHE` names a directory shared between target dirs.

mod entry;

pub use entry::{tokenizer_file, Entry, BLOB_FILE, ENTRY_FILE};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Bumped when the layout of a cache entry changes.
const ENTRY_VERSION: &str = "npu-model cache entry v5";

/// SHA-256 of a file, read in 4 MiB chunks (no memory map: a plain read is as fast from the
/// page cache and cannot fault on a file truncated meanwhile).
pub fn hash_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// SHA-256 of bytes.
#[cfg(test)]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Digest of the running executable (the build script), computed once per process. `None`
/// when it cannot be read; the key then relies on the version alone.
pub fn exe_digest() -> Option<[u8; 32]> {
    static D: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    *D.get_or_init(|| std::env::current_exe().ok().and_then(|p| hash_file(&p).ok()))
}

/// A cache key: SHA-256 over length-prefixed fields, so no two field lists collide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Key of packing `model_digest` with the given options.
    pub fn new(model_digest: &[u8; 32], fields: &[&[u8]]) -> Key {
        let mut h = Sha256::new();
        let mut put = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        put(ENTRY_VERSION.as_bytes());
        put(env!("CARGO_PKG_VERSION").as_bytes());
        put(&npu_runtime::format::FORMAT_VERSION.to_le_bytes());
        put(&exe_digest().unwrap_or([0; 32]));
        put(model_digest);
        for f in fields {
            put(f);
        }
        Key(h.finalize().into())
    }

    /// Hex form (the entry's directory name).
    pub fn hex(&self) -> String {
        hex(&self.0)
    }
}

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a complete entry, if present.
    pub fn get(&self, key: &Key) -> Option<PathBuf> {
        let dir = self.root.join(key.hex());
        dir.join("complete").is_file().then_some(dir)
    }

    /// Removes an entry (one found corrupt), so that [`Cache::put`] can replace it.
    pub fn remove(&self, key: &Key) {
        let _ = std::fs::remove_dir_all(self.root.join(key.hex()));
    }

    /// Stores an entry: `fill` writes its files into a fresh temporary directory, which is
    /// then renamed to the entry's name. Returns the entry's directory.
    pub fn put(
        &self,
        key: &Key,
        fill: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.root)?;
        let dir = self.root.join(key.hex());
        let tmp = self.root.join(format!(".tmp-{}-{}", key.hex(), std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let filled = fill(&tmp).and_then(|()| std::fs::write(tmp.join("complete"), ENTRY_VERSION));
        if let Err(e) = filled {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        // An incomplete leftover under the final name (from an older crash) is replaced.
        if dir.exists() && !dir.join("complete").is_file() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => Ok(dir),
            // Another build finished the same entry first: theirs is as good as ours.
            Err(_) if dir.join("complete").is_file() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(dir)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Removes every entry (and stale temporary directory) whose key is not in `keep`.
    pub fn retain(&self, keep: &[Key]) {
        let keep: Vec<String> = keep.iter().map(Key::hex).collect();
        let Ok(rd) = std::fs::read_dir(&self.root) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep.contains(&name) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Writes `bytes` to `path` through a temporary file renamed into place, unless the file
/// already holds exactly these bytes (then its mtime is left alone). Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.len() == bytes.len() as u64 && std::fs::read(path).is_ok_and(|old| old == bytes) {
            return Ok(false);
        }
    }
    write_atomic(path, |f| f.write_all(bytes))?;
    Ok(true)
}

/// Copies file `src` to `dst` as [`write_if_changed`] writes bytes, both files read a chunk at
/// a time (never whole). Returns whether it wrote.
pub fn copy_if_changed(src: &Path, dst: &Path) -> io::Result<bool> {
    if same_contents(src, dst)? {
        return Ok(false);
    }
    write_atomic(dst, |f| {
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        io::copy(&mut std::fs::File::open(src)?, &mut w)?;
        w.flush()
    })?;
    Ok(true)
}

/// Whether `b` exists with exactly the bytes of `a`.
fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let len = std::fs::metadata(a)?.len();
    if std::fs::metadata(b).map_or(true, |m| m.len() != len) {
        return Ok(false);
    }
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return Ok(false);
    };
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            // `a` ended: same if `b` did too.
            return Ok(fb.read(&mut bb[..1])? == 0);
        }
        if fb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Creates `path` through a temporary file in the same directory renamed into place, so
/// readers see the old file or the whole new one. `fill` writes the file (buffer large writes
/// yourself); it may seek, as the archive writer does to patch a header.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        // FIPS 180-2 example "abc".
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let p = std::env::temp_dir().join(format!("npu-cache-hash-{}", std::process::id()));
        std::fs::write(&p, vec![7u8; 9 << 20]).unwrap();
        assert_eq!(hash_file(&p).unwrap(), sha256(&vec![7u8; 9 << 20]));
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn keys_separate_fields() {
        let d = [1u8; 32];
        assert_ne!(Key::new(&d, &[b"ab", b"c"]), Key::new(&d, &[b"a", b"bc"]));
        assert_eq!(Key::new(&d, &[b"rk3588"]), Key::new(&d, &[b"rk3588"]));
        assert_ne!(Key::new(&d, &[b"rk3588"]), Key::new(&[2u8; 32], &[b"rk3588"]));
    }

    #[test]
    fn put_get_retain() {
        let root = std::env::temp_dir().join(format!("npu-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let c = Cache::new(&root);
        let k1 = Key::new(&[1; 32], &[]);
        let k2 = Key::new(&[2; 32], &[]);
        assert!(c.get(&k1).is_none());
        // A failing fill leaves nothing behind.
        assert!(c.put(&k1, |_| Err(io::Error::other("boom"))).is_err());
        assert!(c.get(&k1).is_none());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        let d1 = c.put(&k1, |d| std::fs::write(d.join("blob"), b"one")).unwrap();
        c.put(&k2, |d| std::fs::write(d.join("blob"), b"two")).unwrap();
        assert_eq!(c.get(&k1), Some(d1.clone()));
        assert_eq!(std::fs::read(d1.join("blob")).unwrap(), b"one");
        c.retain(std::slice::from_ref(&k2));
        assert!(c.get(&k1).is_none() && c.get(&k2).is_some());
        let f = root.join("file");
        assert!(write_if_changed(&f, b"x").unwrap());
        assert!(!write_if_changed(&f, b"x").unwrap());
        assert!(write_if_changed(&f, b"y").unwrap());
        let (src, dst) = (root.join("src"), root.join("dst"));
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &big).unwrap();
        assert!(copy_if_changed(&src, &dst).unwrap());
        assert_eq!(std::fs::read(&dst).unwrap(), big);
        assert!(!copy_if_changed(&src, &dst).unwrap(), "same bytes: not rewritten");
        let mut edited = big.clone();
        edited[2_500_000] ^= 1;
        std::fs::write(&dst, &edited).unwrap();
        assert!(copy_if_changed(&src, &dst).unwrap(), "one byte differs");
        assert_eq!(std::fs::read(&dst).unwrap(), big);
        let _ = std::fs::remove_dir_all(&root);
    }
}
