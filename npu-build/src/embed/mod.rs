//! How a packed blob reaches the binary.
//!
//! - [`Embed::Bytes`]: the generated code includes the blob with `include_bytes!` into a
//!   `#[repr(C, align(64))]` static (the `include_bytes_aligned` pattern, written out so the
//!   user's crate needs no extra dependency). rustc holds every byte: ~0.15 s and ~14 bytes
//!   of memory per blob byte, so this is for firmware-sized blobs.
//! - [`Embed::Object`]: the build script writes a relocatable object for the compilation
//!   target ([`ObjTarget`], from cargo's `CARGO_CFG_TARGET_*`) holding one 64-byte aligned
//!   data symbol, archives it as a static library and links it; the generated code declares an
//!   `extern "C"` static of the blob's length. rustc never sees the bytes.
//!
//! - [`Embed::File`]: nothing is linked; [`file`] writes the blob beside the executable.
//!
//! Address-range limits of linked data (checked by [`check_limits`]; measured with
//! `scripts/link-large-blob.sh`, results in docs/large-blobs.md):
//! - x86-64: code and data in the default small code model reach ±2 GiB with 32-bit
//!   PC-relative relocations, so a 4.5 GiB blob in `.rodata` fails to link. Blobs of
//!   [`X86_64_LARGE_SECTION`] and more go into `.lrodata.npu_model` with `SHF_X86_64_LARGE`,
//!   which linkers place after everything the small model reaches; Rust code reaches it
//!   through the GOT. A 4.5 GiB blob links and reads back there: no limit below the
//!   address space.
//! - AArch64: there is no large code model for position-independent executables, and the
//!   linker (GNU ld) places the blob, like all read-only data, between `.text` and
//!   `.eh_frame`, whose entries point back at the code with 32-bit PC-relative
//!   `R_AARCH64_PREL32` (±2 GiB); ADRP (±4 GiB) is the next wall. A 3.5 GiB blob fails to
//!   link on the first, a 4.5 GiB one on both; 1.5 GiB links. Blobs above
//!   [`AARCH64_MAX_BLOB`] are refused.
//! - RISC-V 64: the medany code model reaches ±2 GiB with AUIPC pairs (RISC-V ELF psABI,
//!   "Code models"): blobs above [`RISCV64_MAX_BLOB`] are refused.
//! - 32-bit targets: an array cannot exceed `isize::MAX` bytes.
//!
//! Every refusal names the blob's size and the limit and suggests `embed = "file"`.

pub mod archive;
pub mod blob_file;
pub mod file;
pub mod object_file;

use crate::declare::Embed;

/// Blobs at least this large go into the x86-64 large data section. Below 2 GiB on purpose:
/// the rest of the image (code, std's rodata, data) must also fit in the ±2 GiB window.
pub const X86_64_LARGE_SECTION: u64 = 1 << 30;

/// Largest blob linked on AArch64: the ±2 GiB of `.eh_frame`'s 32-bit PC-relative entries,
/// which span the blob, minus 512 MiB kept for code and the rest of the read-only data.
pub const AARCH64_MAX_BLOB: u64 = (2 << 30) - (512 << 20);

/// Largest blob linked on RISC-V 64: medany's ±2 GiB reach minus 512 MiB for code and data.
pub const RISCV64_MAX_BLOB: u64 = (2 << 30) - (512 << 20);

/// Largest blob `embed = "bytes"` accepts: rustc's crate metadata uses 32-bit offsets and
/// ICEs near 1 GiB of included bytes (rust-lang/rust#103607), long before memory runs out.
pub const BYTES_MAX_BLOB: u64 = 512 << 20;

/// Object file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ELF (Linux, Android, BSDs, bare-metal `none`).
    Elf,
    /// COFF (Windows).
    Coff,
    /// Mach-O (Apple): no archive writer with a Mach-O symbol table here yet.
    MachO,
    /// No linkable object format (wasm).
    Unsupported,
}

/// The compilation target, as cargo describes it to build scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjTarget {
    /// `CARGO_CFG_TARGET_ARCH`.
    pub arch: String,
    /// `CARGO_CFG_TARGET_OS`.
    pub os: String,
    /// `CARGO_CFG_TARGET_ENV`.
    pub env: String,
    /// `CARGO_CFG_TARGET_ABI` (e.g. `eabihf`), empty when unset.
    pub abi: String,
    /// `CARGO_CFG_TARGET_ENDIAN`.
    pub little_endian: bool,
    /// `CARGO_CFG_TARGET_POINTER_WIDTH`.
    pub pointer_width: u32,
    /// `CARGO_CFG_TARGET_FEATURE`, split at commas.
    pub features: Vec<String>,
}

/// The environment variables [`ObjTarget::from_env`] reads (each gets `rerun-if-env-changed`;
/// cargo sets them per target, so they only change with the target itself).
pub const TARGET_ENV_VARS: [&str; 7] = [
    "CARGO_CFG_TARGET_ARCH",
    "CARGO_CFG_TARGET_OS",
    "CARGO_CFG_TARGET_ENV",
    "CARGO_CFG_TARGET_ABI",
    "CARGO_CFG_TARGET_ENDIAN",
    "CARGO_CFG_TARGET_POINTER_WIDTH",
    "CARGO_CFG_TARGET_FEATURE",
];

impl ObjTarget {
    /// Reads the target from cargo's environment (build scripts only).
    pub fn from_env() -> Result<ObjTarget, String> {
        let get = |k: &str| std::env::var(k).unwrap_or_default();
        let arch = get("CARGO_CFG_TARGET_ARCH");
        if arch.is_empty() {
            return Err("CARGO_CFG_TARGET_ARCH is not set: npu_build::compile() must run from a build script".into());
        }
        Ok(ObjTarget {
            arch,
            os: get("CARGO_CFG_TARGET_OS"),
            env: get("CARGO_CFG_TARGET_ENV"),
            abi: get("CARGO_CFG_TARGET_ABI"),
            little_endian: get("CARGO_CFG_TARGET_ENDIAN") != "big",
            pointer_width: get("CARGO_CFG_TARGET_POINTER_WIDTH").parse().unwrap_or(64),
            features: get("CARGO_CFG_TARGET_FEATURE")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// The host this process runs on (for tests).
    #[cfg(test)]
    pub fn host() -> ObjTarget {
        ObjTarget {
            arch: std::env::consts::ARCH.into(),
            os: std::env::consts::OS.into(),
            env: if cfg!(target_env = "gnu") { "gnu".into() } else { String::new() },
            abi: String::new(),
            little_endian: cfg!(target_endian = "little"),
            pointer_width: usize::BITS,
            features: Vec::new(),
        }
    }

    /// Object format of this target.
    pub fn format(&self) -> Format {
        match self.os.as_str() {
            "macos" | "ios" | "tvos" | "watchos" | "visionos" => Format::MachO,
            "windows" | "uefi" => Format::Coff,
            _ if self.arch.starts_with("wasm") => Format::Unsupported,
            _ => Format::Elf,
        }
    }

    /// Whether [`Embed::Object`] can be produced for this target.
    pub fn object_supported(&self) -> bool {
        self.format() != Format::Unsupported
            && self.format() != Format::MachO
            && object_file::architecture(self).is_some()
    }

    /// File name of a static library called `name` as rustc looks it up (`-l static=name`).
    pub fn static_lib_file(&self, name: &str) -> String {
        if self.env == "msvc" {
            format!("{name}.lib")
        } else {
            format!("lib{name}.a")
        }
    }
}

/// The largest blob a linker can place in an executable for `t` (`None`: no limit below the
/// address space), with the reason.
pub fn max_linked_blob(t: &ObjTarget) -> Option<(u64, &'static str)> {
    match t.arch.as_str() {
        "aarch64" => Some((
            AARCH64_MAX_BLOB,
            "the blob lies between the code and .eh_frame, whose 32-bit PC-relative entries reach +-2 GiB, and AArch64 executables have no larger code model",
        )),
        "riscv64" => Some((
            RISCV64_MAX_BLOB,
            "RISC-V code reaches data with AUIPC (+-2 GiB, medany code model)",
        )),
        _ => None,
    }
}

fn size(v: u64) -> String {
    format!("{v} bytes ({:.2} GiB)", v as f64 / (1u64 << 30) as f64)
}

/// Chooses the embedding for a blob of `len` bytes and checks the target's limits. Returns
/// the mode, or the message for the attribute.
pub fn check_limits(mode: Embed, len: u64, t: &ObjTarget) -> Result<Embed, String> {
    if t.pointer_width < 64 && len > (1u64 << (t.pointer_width - 1)) - 1 {
        return Err(format!(
            "the packed model is {} but a {}-bit target ({}) cannot address more than {} in one array; choose a smaller quant",
            size(len),
            t.pointer_width,
            t.arch,
            size((1u64 << (t.pointer_width - 1)) - 1)
        ));
    }
    if mode == Embed::File {
        return Ok(Embed::File);
    }
    let resolved = match mode.resolve(len) {
        Embed::Object if !t.object_supported() => {
            if mode == Embed::Object {
                return Err(format!(
                    "embed = \"object\" is not available for target_os = \"{}\", target_arch = \"{}\" (npu-build writes ELF and COFF objects for x86/x86_64/arm/aarch64/riscv); use embed = \"bytes\" or embed = \"file\"",
                    t.os, t.arch
                ));
            }
            Embed::Bytes
        }
        m => m,
    };
    if resolved == Embed::Bytes && len > BYTES_MAX_BLOB {
        return Err(format!(
            "the packed model is {}, more than the {} embed = \"bytes\" takes (rustc needs ~14x the blob in memory and its metadata breaks near 1 GiB); use embed = \"object\" or \"auto\", or embed = \"file\" to keep it in a file beside the executable",
            size(len),
            size(BYTES_MAX_BLOB)
        ));
    }
    let linked_too_big = |&(max, _): &(u64, &str)| resolved == Embed::Object && len > max;
    if let Some((max, why)) = max_linked_blob(t).filter(linked_too_big) {
        return Err(format!(
            "the packed model is {}, more than the {} a blob linked into a target_arch = \"{}\" executable can have ({why}); use embed = \"file\" to keep the weights in a file beside the executable, or choose a smaller quant",
            size(len),
            size(max),
            t.arch
        ));
    }
    Ok(resolved)
}

/// The blob's symbol name: from the crate name, the declaration and the blob's digest only,
/// so it is the same on every machine yet distinct across crates and models.
pub fn symbol_name(crate_name: &str, decl: &str, digest: &[u8; 32]) -> String {
    let clean = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>()
    };
    format!("npu_model_{}_{}_{}", clean(crate_name), clean(decl), crate::cache::hex(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(arch: &str, os: &str, pw: u32) -> ObjTarget {
        ObjTarget {
            arch: arch.into(),
            os: os.into(),
            env: String::new(),
            abi: String::new(),
            little_endian: true,
            pointer_width: pw,
            features: vec![],
        }
    }

    #[test]
    fn limits() {
        let x86 = t("x86_64", "linux", 64);
        assert_eq!(check_limits(Embed::Auto, 1 << 20, &x86), Ok(Embed::Bytes));
        assert_eq!(check_limits(Embed::Auto, 100 << 20, &x86), Ok(Embed::Object));
        assert_eq!(check_limits(Embed::Object, 5 << 30, &x86), Ok(Embed::Object));
        assert!(check_limits(Embed::Bytes, 600 << 20, &x86)
            .unwrap_err()
            .contains("more than the 536870912 bytes (0.50 GiB) embed = \"bytes\" takes"));
        assert_eq!(check_limits(Embed::File, 5 << 30, &x86), Ok(Embed::File));
        let a64 = t("aarch64", "linux", 64);
        assert_eq!(check_limits(Embed::Object, AARCH64_MAX_BLOB, &a64), Ok(Embed::Object));
        let e = check_limits(Embed::Auto, 4608 << 20, &a64).unwrap_err();
        assert!(e.starts_with("the packed model is 4831838208 bytes (4.50 GiB), more than the 1610612736 bytes (1.50 GiB)"), "{e}");
        assert!(e.contains(".eh_frame") && e.contains("embed = \"file\""), "{e}");
        assert_eq!(check_limits(Embed::File, 4608 << 20, &a64), Ok(Embed::File));
        let rv = t("riscv64", "linux", 64);
        assert!(check_limits(Embed::Object, 2 << 30, &rv).unwrap_err().contains("AUIPC"));
        let arm = t("arm", "none", 32);
        assert!(check_limits(Embed::Object, 3 << 30, &arm).unwrap_err().contains("32-bit"));
        let wasm = t("wasm32", "unknown", 32);
        assert_eq!(check_limits(Embed::Auto, 100 << 20, &wasm), Ok(Embed::Bytes));
        assert!(check_limits(Embed::Object, 1 << 20, &wasm).is_err());
    }

    #[test]
    fn symbols_are_path_free() {
        let s = symbol_name("my-app", "SmolLm", &[0xab; 32]);
        assert_eq!(s, "npu_model_my_app_SmolLm_abababababababab");
    }
}
