//! A packed blob kept in a file beside the executable (`#[npu_model(.., embed = "file")]`):
//! for weights too large to link into the binary.
//!
//! The file is a fixed [`HEADER_LEN`]-byte header followed by the blob, unchanged:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | [`MAGIC`] |
//! | 8..12 | [`FILE_VERSION`], u32 little-endian |
//! | 12..16 | [`FORMAT_VERSION`] of the blob's contents, u32 little-endian |
//! | 16..24 | blob length in bytes, u64 little-endian |
//! | 24..56 | SHA-256 of the blob |
//! | 56..64 | zero |
//!
//! [`HEADER_LEN`] is a multiple of [`BLOB_ALIGN`], so a page-aligned mapping of the file
//! gives a blob as aligned as an embedded one. Nothing after the header is parsed: the
//! generated code already holds the descriptor table, and only compares the header with its
//! constants and the file's size with the header (module `load`, feature `std`). The digest is
//! checked only on request (`load::BlobFile::verify`): hashing GiBs at every start would
//! cost seconds.

#[cfg(feature = "std")]
pub mod load;

use crate::format::{BLOB_ALIGN, FORMAT_VERSION};

/// First bytes of a blob file.
pub const MAGIC: [u8; 8] = *b"NPUBLOB\0";

/// Version of the header's layout.
pub const FILE_VERSION: u32 = 1;

/// Bytes before the blob.
pub const HEADER_LEN: usize = 64;
const _: () = assert!((HEADER_LEN as u64).is_multiple_of(BLOB_ALIGN));

/// The header's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`FILE_VERSION`] of the file.
    pub file_version: u32,
    /// [`FORMAT_VERSION`] of the blob.
    pub format_version: u32,
    /// Blob length in bytes (the file is `HEADER_LEN` bytes longer).
    pub blob_len: u64,
    /// SHA-256 of the blob.
    pub sha256: [u8; 32],
}

/// Why bytes are not a blob file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short(usize),
    /// The first 8 bytes are not [`MAGIC`].
    Magic,
    /// Bytes 56..64 are not zero.
    Reserved,
}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            HeaderError::Short(n) => {
                write!(f, "{n} bytes, shorter than the {HEADER_LEN}-byte header")
            }
            HeaderError::Magic => f.write_str("it does not start with the blob file magic NPUBLOB"),
            HeaderError::Reserved => f.write_str("the header's reserved bytes are not zero"),
        }
    }
}

impl Header {
    /// The header of the current versions for a blob of `blob_len` bytes with digest `sha256`.
    pub const fn new(blob_len: u64, sha256: [u8; 32]) -> Header {
        Header { file_version: FILE_VERSION, format_version: FORMAT_VERSION, blob_len, sha256 }
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.file_version.to_le_bytes());
        b[12..16].copy_from_slice(&self.format_version.to_le_bytes());
        b[16..24].copy_from_slice(&self.blob_len.to_le_bytes());
        b[24..56].copy_from_slice(&self.sha256);
        b
    }

    /// Reads a header from the first [`HEADER_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Header, HeaderError> {
        let b: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(HeaderError::Short(b.len()))?;
        if b[0..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        if b[56..64].iter().any(|&x| x != 0) {
            return Err(HeaderError::Reserved);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[16..24]);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&b[24..56]);
        Ok(Header {
            file_version: u32_at(8),
            format_version: u32_at(12),
            blob_len: u64::from_le_bytes(len),
            sha256,
        })
    }

    /// The first field in which `self` (read from a file) differs from `want` (the generated
    /// constants), as a phrase naming both values.
    pub fn mismatch(&self, want: &Header) -> Option<Mismatch> {
        if self.file_version != want.file_version {
            Some(Mismatch::FileVersion { found: self.file_version, want: want.file_version })
        } else if self.format_version != want.format_version {
            Some(Mismatch::FormatVersion { found: self.format_version, want: want.format_version })
        } else if self.blob_len != want.blob_len {
            Some(Mismatch::BlobLen { found: self.blob_len, want: want.blob_len })
        } else if self.sha256 != want.sha256 {
            Some(Mismatch::Sha256)
        } else {
            None
        }
    }
}

/// A header field that differs from what the program was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// [`Header::file_version`].
    FileVersion {
        /// In the file.
        found: u32,
        /// Built with.
        want: u32,
    },
    /// [`Header::format_version`].
    FormatVersion {
        /// In the file.
        found: u32,
        /// Built with.
        want: u32,
    },
    /// [`Header::blob_len`].
    BlobLen {
        /// In the file.
        found: u64,
        /// Built with.
        want: u64,
    },
    /// [`Header::sha256`].
    Sha256,
}

impl core::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Mismatch::FileVersion { found, want } => {
                write!(f, "blob file version {found}, this program reads version {want}")
            }
            Mismatch::FormatVersion { found, want } => {
                write!(f, "packed format version {found}, this program reads version {want}")
            }
            Mismatch::BlobLen { found, want } => write!(
                f,
                "the header says {found} blob bytes, this program was built for {want}: the file is from another build"
            ),
            Mismatch::Sha256 => f.write_str(
                "the header's SHA-256 differs from the one this program was built with: the file is from another build",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_names_mismatches() {
        let h = Header::new(12345, [7; 32]);
        let b = h.to_bytes();
        assert_eq!(&b[..8], b"NPUBLOB\0");
        assert_eq!(Header::parse(&b), Ok(h));
        assert_eq!(Header::parse(&b[..10]), Err(HeaderError::Short(10)));
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(Header::parse(&bad), Err(HeaderError::Magic));
        let mut bad = b;
        bad[60] = 1;
        assert_eq!(Header::parse(&bad), Err(HeaderError::Reserved));
        assert_eq!(h.mismatch(&h), None);
        let other = Header::new(12346, [7; 32]);
        assert_eq!(h.mismatch(&other), Some(Mismatch::BlobLen { found: 12345, want: 12346 }));
        assert_eq!(h.mismatch(&Header::new(12345, [8; 32])), Some(Mismatch::Sha256));
    }
}
