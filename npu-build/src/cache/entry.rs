//! What a cache entry records beside its files: `entry.json`, typed. An entry that is missing,
//! unreadable, of another version or inconsistent with its blob is rejected as a whole; the
//! caller treats that as a miss and packs again.

use npu_runtime::model::{Arch, ModelConfig, RopeStyle};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file in an entry's directory holding its [`Entry`].
pub const ENTRY_FILE: &str = "entry.json";

/// The packed blob's file in an entry's directory.
pub const BLOB_FILE: &str = "blob";

/// The tokenizer tables' bytes in an entry's directory, per byte order
/// (`OwnedTokenizerTables::to_bytes`): little-endian, big-endian.
pub const TOKENIZER_FILES: [&str; 2] = ["tokenizer.le", "tokenizer.be"];

/// The tokenizer file for a target of the given byte order.
pub fn tokenizer_file(little_endian: bool) -> &'static str {
    TOKENIZER_FILES[usize::from(!little_endian)]
}

/// Version of [`Entry`]'s shape.
const ENTRY_JSON_VERSION: u32 = 3;

/// The facts about a packed model that later runs read without unpacking it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Length of the blob file in bytes.
    pub blob_len: u64,
    /// SHA-256 of the blob.
    pub blob_sha256: [u8; 32],
    /// Length in bytes of each tokenizer file (both byte orders have the same layout).
    pub tokenizer_len: u64,
    /// The model's config at its trained context length.
    pub config: ModelConfig,
}

/// [`ModelConfig`] on disk: names for enums, bit patterns for floats (exact round trip).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    arch: String,
    n_layers: u32,
    d_model: u32,
    n_heads: u32,
    n_kv_heads: u32,
    head_dim: u32,
    ff: u32,
    vocab: u32,
    rope_base_bits: u32,
    rope_dim: u32,
    rope_neox: bool,
    rms_eps_bits: u32,
    qkv_bias: bool,
    swa_window: u32,
    /// The local-layer mask in hex (JSON numbers stop at 2^53).
    swa_layers: String,
    rope_base_local_bits: u32,
    query_scale_dim: u32,
    attn_softcap_bits: u32,
    final_softcap_bits: u32,
    tied_output: bool,
    context_len: u32,
    eos: u32,
    eot: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    version: u32,
    blob_len: u64,
    blob_sha256: String,
    tokenizer_len: u64,
    config: ConfigJson,
}

impl Entry {
    /// `entry.json`'s text.
    pub fn to_json(&self) -> String {
        let c = &self.config;
        let doc = EntryJson {
            version: ENTRY_JSON_VERSION,
            blob_len: self.blob_len,
            blob_sha256: super::hex(&self.blob_sha256),
            tokenizer_len: self.tokenizer_len,
            config: ConfigJson {
                arch: c.arch.name().to_string(),
                n_layers: c.n_layers,
                d_model: c.d_model,
                n_heads: c.n_heads,
                n_kv_heads: c.n_kv_heads,
                head_dim: c.head_dim,
                ff: c.ff,
                vocab: c.vocab,
                rope_base_bits: c.rope_base.to_bits(),
                rope_dim: c.rope_dim,
                rope_neox: c.rope_style == RopeStyle::Neox,
                rms_eps_bits: c.rms_eps.to_bits(),
                qkv_bias: c.qkv_bias,
                swa_window: c.swa_window,
                swa_layers: format!("{:x}", c.swa_layers),
                rope_base_local_bits: c.rope_base_local.to_bits(),
                query_scale_dim: c.query_scale_dim,
                attn_softcap_bits: c.attn_softcap.to_bits(),
                final_softcap_bits: c.final_softcap.to_bits(),
                tied_output: c.tied_output,
                context_len: c.context_len,
                eos: c.eos,
                eot: c.eot,
            },
        };
        serde_json::to_string_pretty(&doc).expect("a cache entry serializes") + "\n"
    }

    /// Parses `entry.json`'s text.
    pub fn from_json(text: &str) -> Result<Entry, String> {
        let doc: EntryJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if doc.version != ENTRY_JSON_VERSION {
            return Err(format!("entry version {} (expected {ENTRY_JSON_VERSION})", doc.version));
        }
        let blob_sha256 = parse_digest(&doc.blob_sha256)
            .ok_or_else(|| format!("blob_sha256 `{}` is not 64 hex digits", doc.blob_sha256))?;
        let j = doc.config;
        let arch = Arch::from_name(&j.arch).ok_or_else(|| format!("unknown arch `{}`", j.arch))?;
        let mut c = ModelConfig::new(
            arch,
            j.n_layers,
            j.d_model,
            j.n_heads,
            j.n_kv_heads,
            j.head_dim,
            j.ff,
            j.vocab,
            f32::from_bits(j.rope_base_bits),
            f32::from_bits(j.rms_eps_bits),
            j.tied_output,
            j.context_len,
            j.eos,
        );
        c.rope_dim = j.rope_dim;
        c.rope_style = if j.rope_neox { RopeStyle::Neox } else { RopeStyle::Normal };
        c.qkv_bias = j.qkv_bias;
        c.swa_window = j.swa_window;
        c.swa_layers = u128::from_str_radix(&j.swa_layers, 16)
            .map_err(|_| format!("swa_layers `{}` is not a hex mask", j.swa_layers))?;
        c.rope_base_local = f32::from_bits(j.rope_base_local_bits);
        c.query_scale_dim = j.query_scale_dim;
        c.attn_softcap = f32::from_bits(j.attn_softcap_bits);
        c.final_softcap = f32::from_bits(j.final_softcap_bits);
        c.eot = j.eot;
        Ok(Entry {
            blob_len: doc.blob_len,
            blob_sha256,
            tokenizer_len: doc.tokenizer_len,
            config: c,
        })
    }

    /// Reads the entry in directory `dir` and checks that its blob and tokenizer files have
    /// the recorded lengths. The message says what is wrong.
    pub fn load(dir: &Path) -> Result<Entry, String> {
        let path = dir.join(ENTRY_FILE);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let entry = Entry::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        check_len(&dir.join(BLOB_FILE), entry.blob_len)?;
        for f in TOKENIZER_FILES {
            check_len(&dir.join(f), entry.tokenizer_len)?;
        }
        Ok(entry)
    }
}

fn check_len(file: &Path, want: u64) -> Result<(), String> {
    let len = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
    if len != want {
        return Err(format!("{}: {len} bytes, the entry records {want}", file.display()));
    }
    Ok(())
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        let mut c = ModelConfig::new(
            Arch::Qwen2,
            24,
            896,
            14,
            2,
            64,
            4864,
            151936,
            1e6,
            1e-6,
            false,
            512,
            151645,
        );
        c.eot = Some(151645);
        c.rope_dim = 32;
        c.rope_style = RopeStyle::Neox;
        Entry { blob_len: 3, blob_sha256: [0xab; 32], tokenizer_len: 2, config: c }
    }

    #[test]
    fn round_trips() {
        let mut e = sample();
        assert_eq!(Entry::from_json(&e.to_json()), Ok(e.clone()));
        e.config.eot = None;
        e.config.rope_style = RopeStyle::Normal;
        assert_eq!(Entry::from_json(&e.to_json()), Ok(e.clone()));
        // Gemma 2 27B's sliding window, soft caps and wide query scale.
        e.config = ModelConfig::new(
            Arch::Gemma2,
            46,
            4608,
            32,
            16,
            128,
            36864,
            256000,
            1e4,
            1e-6,
            true,
            8192,
            1,
        );
        e.config.swa_layers |= 1 << 45;
        assert_eq!(Entry::from_json(&e.to_json()), Ok(e));
    }

    #[test]
    fn corrupt_entries_are_errors() {
        let good = sample().to_json();
        let bad_digest = good.replace(&"ab".repeat(32), &"zz".repeat(32));
        let short_digest = good.replace(&"ab".repeat(32), "abab");
        for text in ["", "{}", "not json", &good[..good.len() / 2], &bad_digest, &short_digest] {
            assert!(Entry::from_json(text).is_err(), "{text}");
        }
        let dir = std::env::temp_dir().join(format!("npu-cache-entry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(Entry::load(&dir).is_err());
        std::fs::write(dir.join(ENTRY_FILE), &good).unwrap();
        assert!(Entry::load(&dir).is_err(), "no blob");
        std::fs::write(dir.join(BLOB_FILE), b"ab").unwrap();
        assert!(Entry::load(&dir).unwrap_err().contains("records 3"));
        std::fs::write(dir.join(BLOB_FILE), b"abc").unwrap();
        assert!(Entry::load(&dir).is_err(), "no tokenizer files");
        std::fs::write(dir.join(tokenizer_file(true)), b"tk").unwrap();
        std::fs::write(dir.join(tokenizer_file(false)), b"t").unwrap();
        assert!(Entry::load(&dir).unwrap_err().contains("records 2"));
        std::fs::write(dir.join(tokenizer_file(false)), b"kt").unwrap();
        assert_eq!(Entry::load(&dir), Ok(sample()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
