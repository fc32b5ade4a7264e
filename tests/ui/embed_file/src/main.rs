//! `embed = "file"` end to end: the build writes the blob file beside the executable, `load()`
//! maps it, and the model generates the same tokens as the same model embedded as bytes;
//! a missing, truncated or foreign blob file is an error value naming the path.
use npu_model_macro::npu_model;
use npu_runtime::backend::CpuReference;
use npu_runtime::blob_file::load::Reason;
use npu_runtime::generate::generate;
use npu_runtime::model::{Model, Session};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::tokenizer::EncodeOptions;

#[npu_model(path = "models/moby-tiny.gguf", target = "cpu", quant = "int8", context = 64, embed = "file")]
struct OnDisk;

#[npu_model(path = "models/moby-tiny.gguf", target = "cpu", quant = "int8", context = 64, embed = "bytes")]
struct Linked;

fn greedy(model: Model<'static>, arena_bytes: usize) -> Vec<u32> {
    let tok = model.tokenizer().unwrap();
    let prompt = tok
        .encode_vec(b"Call me Ishmael.", EncodeOptions { add_special: true, parse_special: false })
        .unwrap();
    let mut arena = vec![0u8; arena_bytes];
    let mut session = Session::new(model, CpuReference, &mut arena).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let mut out = Vec::new();
    generate(&mut session, &mut sampler, &prompt, 8, |id| {
        out.push(id);
        true
    })
    .unwrap();
    out
}

fn main() {
    assert_eq!(OnDisk::EMBED, "file");
    let path = OnDisk::blob_path().unwrap();
    assert!(path.ends_with("ui_embed_file-OnDisk.npublob"), "{}", path.display());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), OnDisk::BLOB_LEN as u64 + 64);
    let m = OnDisk::load().unwrap();
    assert!(std::ptr::eq(m, OnDisk::load().unwrap()), "mapped once");
    OnDisk::verify_from(&path).unwrap();
    assert_eq!(m.weights.blob.as_ptr() as usize % 64, 0, "alignment");
    m.weights.check().unwrap();
    assert_eq!((OnDisk::BLOB_LEN, OnDisk::BLOB_SHA256), (Linked::BLOB_LEN, Linked::BLOB_SHA256));
    assert_eq!(m.weights.blob, Linked::blob());

    let tokens = greedy(*m, OnDisk::ARENA_BYTES);
    assert_eq!(tokens.len(), 8, "{tokens:?}");
    assert_eq!(tokens, greedy(*Linked::model(), Linked::ARENA_BYTES));
    println!("generated {tokens:?}");

    // Errors name the path and the reason.
    let dir = std::env::temp_dir().join(format!("ui-embed-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let missing = dir.join("absent.npublob");
    let e = OnDisk::load_from(&missing).unwrap_err();
    assert!(matches!(e.reason, Reason::Missing) && e.to_string().contains("absent.npublob"), "{e}");
    let short = dir.join("short.npublob");
    std::fs::write(&short, &bytes[..bytes.len() - 64]).unwrap();
    let e = OnDisk::load_from(&short).unwrap_err();
    assert!(matches!(e.reason, Reason::Size { .. }) && e.to_string().contains("short.npublob"), "{e}");
    let mut foreign = bytes.clone();
    foreign[30] ^= 1; // a digest byte of the header
    let other = dir.join("other.npublob");
    std::fs::write(&other, &foreign).unwrap();
    let e = OnDisk::load_from(&other).unwrap_err();
    assert!(matches!(e.reason, Reason::Mismatch(_)), "{e}");
    let mut flipped = bytes;
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let corrupt = dir.join("corrupt.npublob");
    std::fs::write(&corrupt, &flipped).unwrap();
    OnDisk::load_from(&corrupt).unwrap();
    let e = OnDisk::verify_from(&corrupt).unwrap_err();
    assert!(matches!(e.reason, Reason::Digest), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
