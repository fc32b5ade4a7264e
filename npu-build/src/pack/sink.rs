//! The blob as a byte stream: regions written in ascending offset order, zero bytes in the
//! gaps, and the blob's digests (SHA-256, FNV-1a 64) computed over exactly the bytes written,
//! so a blob never has to be in memory whole to be named.

use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// FNV-1a 64 offset basis and prime (the same function as `npu_runtime::exec::rotate::fnv1a64`).
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The length and digests of a finished blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobDigest {
    /// Bytes written.
    pub len: u64,
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// FNV-1a 64 of the bytes.
    pub fnv1a64: u64,
}

/// A writer that keeps the position and digests of everything passed through it.
pub struct BlobSink<W: Write> {
    out: W,
    pos: u64,
    sha: Sha256,
    fnv: u64,
}

impl<W: Write> BlobSink<W> {
    /// A sink at offset 0 writing to `out`.
    pub fn new(out: W) -> Self {
        BlobSink { out, pos: 0, sha: Sha256::new(), fnv: FNV_OFFSET }
    }

    /// Writes `bytes` at the current offset.
    pub fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.sha.update(bytes);
        let mut h = self.fnv;
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
        }
        self.fnv = h;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes zero bytes up to `offset` (which must not be behind the current offset).
    pub fn zeros_to(&mut self, offset: u64) -> io::Result<()> {
        if offset < self.pos {
            return Err(io::Error::other(format!(
                "blob region at {offset} lies behind the write position {}",
                self.pos
            )));
        }
        const ZEROS: [u8; 4096] = [0; 4096];
        while self.pos < offset {
            let n = (offset - self.pos).min(ZEROS.len() as u64) as usize;
            self.put(&ZEROS[..n])?;
        }
        Ok(())
    }

    /// Flushes the writer; returns it with the blob's length and digests.
    pub fn finish(mut self) -> io::Result<(W, BlobDigest)> {
        self.out.flush()?;
        let d = BlobDigest { len: self.pos, sha256: self.sha.finalize().into(), fnv1a64: self.fnv };
        Ok((self.out, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npu_runtime::exec::rotate;

    #[test]
    fn digests_match_the_whole_buffer() {
        let mut s = BlobSink::new(Vec::new());
        s.put(b"abc").unwrap();
        s.zeros_to(5000).unwrap();
        s.put(&[7u8; 10]).unwrap();
        assert!(s.zeros_to(10).is_err(), "regions go forward only");
        let (bytes, d) = s.finish().unwrap();
        assert_eq!(bytes.len(), 5010);
        assert_eq!(&bytes[..3], b"abc");
        assert!(bytes[3..5000].iter().all(|&b| b == 0));
        assert_eq!(d.len, 5010);
        assert_eq!(d.fnv1a64, rotate::fnv1a64(&bytes));
        assert_eq!(d.sha256, crate::cache::sha256(&bytes));
    }
}
