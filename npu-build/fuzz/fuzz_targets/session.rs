//! A session of one valid tiny model fed arbitrary token ids (in and out of the vocabulary,
//! past the context), rewound, sampled with arbitrary settings: every misuse must be an error
//! value, every sampled id inside the vocabulary.
#![no_main]

#[path = "../../tests/hostile/mod.rs"]
mod hostile;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use npu_build::gguf::Gguf;
use npu_build::model::OwnedModel;
use npu_build::pack::PackOptions;
use npu_runtime::backend::CpuReference;
use npu_runtime::format::Scheme;
use npu_runtime::model::{arena_bytes, Session};
use npu_runtime::target::Target;
use std::sync::OnceLock;

fn fixture() -> &'static OwnedModel {
    static F: OnceLock<OwnedModel> = OnceLock::new();
    F.get_or_init(|| {
        // No input bytes: every choice takes its default, the valid model.
        let bytes = hostile::model_bytes(&mut Unstructured::new(&[])).unwrap();
        let g = Gguf::from_vec("session.gguf", bytes).unwrap();
        let target = Target::by_name("cpu").unwrap();
        let opts = PackOptions { target, scheme: Scheme::Int8, threads: 1 };
        OwnedModel::from_gguf(&g, &opts, Some(24)).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let view = f.view();
    let mut arena = vec![0u8; arena_bytes(&f.config, f.config.context_len)];
    let mut s = Session::new(view.model(), CpuReference, &mut arena).unwrap();
    let _ = hostile::drive(&mut s, &mut Unstructured::new(data));
});
