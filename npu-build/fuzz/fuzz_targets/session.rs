//! A session of one valid tiny model fed arbitrary token ids (in and out of the vocabulary,
//! past the context), rewound, sampled with arbitrary settings: every misuse must be an error
//! value, every sampled id inside the vocabulary.
#![no_main]

#[path = "../../tests/hostile/mod.rs"]
mod hostile;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use npu_build::config::model_config;
use npu_build::gguf::Gguf;
use npu_build::pack::{pack, PackOptions, Packed};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::backend::CpuReference;
use npu_runtime::format::{PackedModel, Scheme};
use npu_runtime::model::{arena_bytes, Model, ModelConfig, Session};
use npu_runtime::target::Target;
use std::sync::OnceLock;

struct Fixture {
    packed: Packed,
    config: ModelConfig,
    tok: OwnedTokenizerTables,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // No input bytes: every choice takes its default, the valid model.
        let bytes = hostile::model_bytes(&mut Unstructured::new(&[])).unwrap();
        let g = Gguf::from_vec("session.gguf", bytes).unwrap();
        let tok = OwnedTokenizerTables::from_gguf(&g).unwrap();
        let config = model_config(&g, &tok, Some(24)).unwrap();
        let target = Target::by_name("cpu").unwrap();
        let packed = pack(&g, &PackOptions { target, scheme: Scheme::Int8, threads: 1 }).unwrap();
        Fixture { packed, config, tok }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let descs = f.packed.descs();
    let tables = f.tok.tables();
    let model = Model {
        config: f.config,
        weights: PackedModel {
            target: f.packed.target.id,
            scheme: f.packed.scheme,
            tensors: &descs,
            blob: &f.packed.blob,
        },
        tokenizer: &tables,
    };
    let mut arena = vec![0u8; arena_bytes(&f.config, f.config.context_len)];
    let mut s = Session::new(model, CpuReference, &mut arena).unwrap();
    let _ = hostile::drive(&mut s, &mut Unstructured::new(data));
});
