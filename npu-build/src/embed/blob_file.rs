//! A cache entry's blob file as the object writer takes it: a slice over a read-only map of
//! the file, and a writer that, asked to write exactly that slice, copies the file with plain
//! reads instead. The object writer lays out headers around the slice and writes it in one
//! piece, so the map's pages are never touched and embedding a blob of any size costs a
//! copy buffer of memory, not the blob.

use memmap2::Mmap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// An open blob file and its map.
pub struct BlobFile {
    file: File,
    map: Mmap,
}

impl BlobFile {
    /// Opens and maps `path`.
    pub fn open(path: &Path) -> io::Result<BlobFile> {
        let file = File::open(path)?;
        // SAFETY: a cache entry's files are never modified after the entry is renamed into
        // place; the bytes are read through the map only if a writer bypasses `writer`.
        let map = unsafe { Mmap::map(&file) }?;
        Ok(BlobFile { file, map })
    }

    /// The blob's bytes, mapped (pages are read from the file only where touched).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A writer over `out` that copies the whole of [`BlobFile::bytes`] from the file when
    /// asked to write exactly that slice, and passes everything else through.
    pub fn writer<W: Write>(&self, out: W) -> CopyingWriter<'_, W> {
        CopyingWriter { blob: self, out }
    }
}

/// See [`BlobFile::writer`].
pub struct CopyingWriter<'a, W: Write> {
    blob: &'a BlobFile,
    out: W,
}

impl<W: Write> CopyingWriter<'_, W> {
    fn is_blob(&self, buf: &[u8]) -> bool {
        let map = self.blob.bytes();
        !buf.is_empty() && std::ptr::eq(buf.as_ptr(), map.as_ptr()) && buf.len() == map.len()
    }

    fn copy_blob(&mut self) -> io::Result<()> {
        let want = self.blob.map.len() as u64;
        let mut f = &self.blob.file;
        f.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut f.take(want), &mut self.out)?;
        if copied != want {
            return Err(io::Error::other(format!(
                "the blob file ended after {copied} of {want} bytes"
            )));
        }
        Ok(())
    }
}

impl<W: Write> Write for CopyingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.is_blob(buf) {
            self.copy_blob()?;
            return Ok(buf.len());
        }
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.is_blob(buf) {
            return self.copy_blob();
        }
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{object_file, ObjTarget};

    /// The object written through the copying writer equals the one written from the bytes.
    #[test]
    fn objects_are_the_same_through_the_file() {
        let dir = std::env::temp_dir().join(format!("npu-blob-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("blob");
        let blob: Vec<u8> = (0..100_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        std::fs::write(&p, &blob).unwrap();
        let t = ObjTarget::host();
        let mut direct = Vec::new();
        object_file::write(&t, "npu_model_x", &blob, 64, &mut direct).unwrap();
        let f = BlobFile::open(&p).unwrap();
        let mut streamed = Vec::new();
        object_file::write(&t, "npu_model_x", f.bytes(), 64, f.writer(&mut streamed)).unwrap();
        assert_eq!(streamed, direct);
        // Other writes pass through unchanged, including a part of the blob.
        let mut w = f.writer(Vec::new());
        w.write_all(&f.bytes()[1..]).unwrap();
        w.write_all(b"tail").unwrap();
        assert_eq!(w.out.len(), blob.len() - 1 + 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
