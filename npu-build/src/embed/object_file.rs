//! A relocatable object holding one blob as one global data symbol, written with the
//! `object` crate for the compilation target's format and architecture.

use super::{Format, ObjTarget, X86_64_LARGE_SECTION};
use object::write::{Object, Symbol, SymbolSection};
use object::{
    elf, Architecture, BinaryFormat, Endianness, SectionFlags, SectionKind, SymbolFlags,
    SymbolKind, SymbolScope,
};
use std::io::Write;

/// The `object` architecture for a cargo `target_arch`, if supported.
pub fn architecture(t: &ObjTarget) -> Option<Architecture> {
    Some(match t.arch.as_str() {
        "x86_64" => Architecture::X86_64,
        "x86" => Architecture::I386,
        "aarch64" => Architecture::Aarch64,
        "arm" => Architecture::Arm,
        "riscv64" => Architecture::Riscv64,
        "riscv32" => Architecture::Riscv32,
        _ => return None,
    })
}

/// ELF `e_flags` the linker checks for compatibility with the rest of the program.
fn elf_flags(t: &ObjTarget) -> u32 {
    let has = |f: &str| t.features.iter().any(|x| x == f);
    match t.arch.as_str() {
        // EABI version 5; hard-float ABI on `*hf` targets.
        "arm" => 0x0500_0000 | if t.abi.ends_with("hf") { 0x400 } else { 0 },
        // Float ABI follows the widest float extension (lp64d/ilp32f...), RVC if compressed.
        "riscv64" | "riscv32" => {
            let float = if has("d") {
                0x4
            } else if has("f") {
                0x2
            } else {
                0
            };
            float | u32::from(has("c"))
        }
        _ => 0,
    }
}

/// Writes the object to `w`: section `.rodata.npu_model` (`.lrodata.npu_model`, flagged
/// `SHF_X86_64_LARGE`, for large x86-64 blobs) aligned to `align`, and the global symbol
/// `symbol` covering the whole blob. No timestamps or paths go into the file.
pub fn write(
    t: &ObjTarget,
    symbol: &str,
    blob: &[u8],
    align: u64,
    w: impl Write,
) -> Result<(), String> {
    let arch = architecture(t)
        .ok_or_else(|| format!("no object writer for target_arch = \"{}\"", t.arch))?;
    let endian = if t.little_endian { Endianness::Little } else { Endianness::Big };
    let format = match t.format() {
        Format::Elf => BinaryFormat::Elf,
        Format::Coff => BinaryFormat::Coff,
        Format::MachO => BinaryFormat::MachO,
        Format::Unsupported => {
            return Err(format!("no object format for target_os = \"{}\"", t.os))
        }
    };
    let mut obj = Object::new(format, arch, endian);
    let section = if format == BinaryFormat::Elf {
        obj.flags = object::FileFlags::Elf {
            os_abi: elf::OsAbi(0),
            abi_version: 0,
            e_flags: elf::FileFlags(elf_flags(t)),
        };
        let large = t.arch == "x86_64" && blob.len() as u64 >= X86_64_LARGE_SECTION;
        let name: &[u8] = if large { b".lrodata.npu_model" } else { b".rodata.npu_model" };
        let id = obj.add_section(Vec::new(), name.to_vec(), SectionKind::ReadOnlyData);
        // SHF_ALLOC, plus SHF_X86_64_LARGE (0x1000_0000) so the linker keeps it out of the
        // ±2 GiB window the small code model needs.
        let flags = 0x2 | if large { 0x1000_0000 } else { 0 };
        obj.section_mut(id).flags =
            SectionFlags::Elf { sh_type: elf::SectionType(1), sh_flags: elf::SectionFlags(flags) };
        id
    } else {
        obj.section_id(object::write::StandardSection::ReadOnlyData)
    };
    obj.set_section_data(section, blob, align);
    obj.add_symbol(Symbol {
        name: symbol.as_bytes().to_vec(),
        value: 0,
        size: blob.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    obj.write_stream(w).map_err(|e| format!("writing the object file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object as _, ObjectSection, ObjectSymbol};

    fn target(arch: &str, abi: &str, pointer_width: u32) -> ObjTarget {
        ObjTarget {
            arch: arch.into(),
            os: "none".into(),
            env: String::new(),
            abi: abi.into(),
            little_endian: true,
            pointer_width,
            features: vec![],
        }
    }

    /// The bare-metal firmware targets: ELF class, machine and flags a linker for
    /// aarch64-unknown-none and thumbv7em-none-eabihf accepts, and the symbol over the blob.
    #[test]
    fn bare_metal_arm_objects() {
        let blob: Vec<u8> = (0..300u32).map(|i| (i * 13) as u8).collect();
        for (t, class, machine, flags) in [
            // (target, ELFCLASS64 = 2 / ELFCLASS32 = 1, EM_AARCH64 = 183 / EM_ARM = 40, e_flags)
            (target("aarch64", "", 64), 2u8, 183u16, 0u32),
            (target("arm", "eabihf", 32), 1, 40, 0x0500_0400),
            (target("arm", "eabi", 32), 1, 40, 0x0500_0000),
        ] {
            assert!(t.object_supported(), "{}", t.arch);
            let mut bytes = Vec::new();
            write(&t, "npu_model_fw", &blob, 64, &mut bytes).unwrap();
            assert_eq!(&bytes[..4], b"\x7fELF");
            assert_eq!(bytes[4], class, "{} {}", t.arch, t.abi); // EI_CLASS
            assert_eq!(bytes[5], 1); // EI_DATA: little-endian
            assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), machine);
            // e_flags sits after e_entry, e_phoff and e_shoff (word-sized each).
            let at = if class == 1 { 36 } else { 48 };
            assert_eq!(
                u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()),
                flags,
                "{} {}",
                t.arch,
                t.abi
            );
            let file = object::File::parse(&*bytes).unwrap();
            let sym = file.symbols().find(|s| s.name() == Ok("npu_model_fw")).unwrap();
            assert_eq!(sym.size(), 300);
            let sec = file.section_by_index(sym.section_index().unwrap()).unwrap();
            assert_eq!(sec.name(), Ok(".rodata.npu_model"));
            assert_eq!(sec.align(), 64);
            assert_eq!(sec.data().unwrap(), &blob[..]);
        }
    }
}
