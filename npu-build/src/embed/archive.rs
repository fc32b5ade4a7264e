//! A static library (`ar` archive, System V / GNU variant, which GNU ld, lld and MSVC's
//! linker read) holding one object member and a symbol index naming its one symbol. Written
//! by hand because the member is streamed straight from the object writer: a multi-GiB blob
//! is never copied in memory again. Every header field that could vary (date, uid, gid) is
//! zero, so the archive is byte-identical on every machine.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

const MEMBER_NAME: &str = "npu_model.o/";

fn header(name: &str, size: u64, mode: &str) -> Vec<u8> {
    let mut h = format!("{name:<16}{:<12}{:<6}{:<6}{mode:<8}{size:<10}`\n", 0, 0, 0);
    h.truncate(60);
    h.into_bytes()
}

/// Writes `path`: an archive with a symbol index for `symbol` and one member whose bytes
/// `write_member` streams. Written through a temporary file renamed into place.
pub fn write(
    path: &Path,
    symbol: &str,
    write_member: impl FnOnce(&mut BufWriter<&mut File>) -> Result<(), String>,
) -> Result<(), String> {
    crate::cache::write_atomic(path, |f| {
        // Symbol index: count, member offsets (big-endian u32), NUL-terminated names.
        let mut index = Vec::new();
        index.extend_from_slice(&1u32.to_be_bytes());
        let index_len = 4 + 4 + symbol.len() as u64 + 1;
        let member_at = 8 + 60 + index_len + index_len % 2;
        let member_at32 =
            u32::try_from(member_at).map_err(|_| io::Error::other("symbol name too long"))?;
        index.extend_from_slice(&member_at32.to_be_bytes());
        index.extend_from_slice(symbol.as_bytes());
        index.push(0);
        if index.len() % 2 == 1 {
            index.push(b'\n');
        }
        let mut head = b"!<arch>\n".to_vec();
        head.extend(header("/", index_len, "0"));
        head.extend(index);
        head.extend(header(MEMBER_NAME, 0, "644"));
        f.write_all(&head)?;
        let data_at = head.len() as u64;
        {
            let mut w = BufWriter::with_capacity(1 << 20, &mut *f);
            write_member(&mut w).map_err(io::Error::other)?;
            w.flush()?;
        }
        let end = f.stream_position()?;
        let size = end - data_at;
        if size > 9_999_999_999 {
            return Err(io::Error::other(
                "object member exceeds the ar format's 10-digit size field",
            ));
        }
        // Patch the member's size field (offset 48 in its header), then pad to even.
        f.seek(SeekFrom::Start(data_at - 60 + 48))?;
        f.write_all(format!("{size:<10}").as_bytes())?;
        f.seek(SeekFrom::End(0))?;
        if size % 2 == 1 {
            f.write_all(b"\n")?;
        }
        Ok(())
    })
    .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::{object_file, ObjTarget};

    #[test]
    fn archive_layout_and_symbol() {
        let dir = std::env::temp_dir().join(format!("npu-ar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("libt.a");
        let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let t = ObjTarget::host();
        write(&p, "npu_model_t_M_00", |w| object_file::write(&t, "npu_model_t_M_00", &blob, 64, w))
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"!<arch>\n");
        assert_eq!(&bytes[8..24], b"/               ");
        // The index points at the member header.
        let at = u32::from_be_bytes(bytes[72..76].try_into().unwrap()) as usize;
        assert_eq!(&bytes[at..at + 12], MEMBER_NAME.as_bytes());
        let size: usize =
            std::str::from_utf8(&bytes[at + 48..at + 58]).unwrap().trim().parse().unwrap();
        assert_eq!(bytes.len(), at + 60 + size + size % 2);
        // The member is an object whose symbol holds the blob.
        let obj = &bytes[at + 60..at + 60 + size];
        let file = object::File::parse(obj).unwrap();
        use object::{Object, ObjectSection, ObjectSymbol};
        let sym = file.symbols().find(|s| s.name() == Ok("npu_model_t_M_00")).unwrap();
        assert_eq!(sym.size(), 1000);
        let sec = file.section_by_index(sym.section_index().unwrap()).unwrap();
        assert_eq!(sec.align(), 64);
        assert_eq!(sec.data().unwrap(), &blob[..]);
        // Same inputs, same bytes.
        let p2 = dir.join("libt2.a");
        write(&p2, "npu_model_t_M_00", |w| {
            object_file::write(&t, "npu_model_t_M_00", &blob, 64, w)
        })
        .unwrap();
        assert_eq!(std::fs::read(&p2).unwrap(), bytes);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
