//! The runtime's `Session` on small random models packed by the real packer: batched prefill
//! equals token-by-token evaluation bit for bit, `eval_all` agrees with `prefill`, runs are
//! deterministic, and every misuse is an error value (arena, tokens, context, tensors).
//! Agreement with llama.cpp on real models is in tests/llamacpp/.

use npu_build::model::OwnedModel;
use npu_build::pack::{pack, MemSource, PackOptions, SeededRng};
use npu_build::tokenizer::OwnedTokenizerTables;
use npu_runtime::backend::CpuReference;
use npu_runtime::format::{PackedModel, Scheme, TensorDesc};
use npu_runtime::generate::{generate, StopReason};
use npu_runtime::model::{arena_bytes, Arch, Model, ModelConfig, ModelError, Session, MAX_BATCH};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::target::Target;

const D: u64 = 64;
const HEADS: u64 = 4;
const KV: u64 = 2;
const HD: u64 = 16;
const FF: u64 = 96;
const VOCAB: u64 = 80;
const LAYERS: u64 = 2;

fn config(arch: Arch, ctx: u32) -> ModelConfig {
    let mut c = ModelConfig::new(
        arch,
        LAYERS as u32,
        D as u32,
        HEADS as u32,
        KV as u32,
        HD as u32,
        FF as u32,
        VOCAB as u32,
        10000.0,
        1e-5,
        arch != Arch::Qwen2,
        ctx,
        2,
    );
    c.eot = Some(3);
    if arch == Arch::Gemma3 {
        // A window short enough for the ring to wrap in these tests; layer 0 local, 1 global.
        c.swa_window = WINDOW;
        c.swa_layers = 0b01;
    }
    c
}

/// Sliding window of the random Gemma 3 models.
const WINDOW: u32 = 8;

fn source(arch: Arch) -> MemSource {
    let mut rng = SeededRng::new(7 + arch as u64);
    let mut src = MemSource::default();
    let mut mat = |src: &mut MemSource, name: &str, k: u64, n: u64, scale: f32| {
        let v = (0..k * n).map(|_| rng.normal() * scale).collect();
        src.push(name, &[k, n], v);
    };
    mat(&mut src, "token_embd.weight", D, VOCAB, 1.0);
    let norm = |src: &mut MemSource, name: &str, n: u64| {
        src.push(name, &[n], (0..n).map(|i| 1.0 + 0.01 * i as f32).collect())
    };
    for l in 0..LAYERS {
        norm(&mut src, &format!("blk.{l}.attn_norm.weight"), D);
        mat(&mut src, &format!("blk.{l}.attn_q.weight"), D, HEADS * HD, 0.2);
        mat(&mut src, &format!("blk.{l}.attn_k.weight"), D, KV * HD, 0.2);
        mat(&mut src, &format!("blk.{l}.attn_v.weight"), D, KV * HD, 0.2);
        if arch == Arch::Qwen2 {
            norm(&mut src, &format!("blk.{l}.attn_q.bias"), HEADS * HD);
            norm(&mut src, &format!("blk.{l}.attn_k.bias"), KV * HD);
            norm(&mut src, &format!("blk.{l}.attn_v.bias"), KV * HD);
        }
        mat(&mut src, &format!("blk.{l}.attn_output.weight"), HEADS * HD, D, 0.1);
        norm(&mut src, &format!("blk.{l}.ffn_norm.weight"), D);
        mat(&mut src, &format!("blk.{l}.ffn_gate.weight"), D, FF, 0.15);
        mat(&mut src, &format!("blk.{l}.ffn_up.weight"), D, FF, 0.15);
        mat(&mut src, &format!("blk.{l}.ffn_down.weight"), FF, D, 0.1);
        if arch == Arch::Gemma3 {
            norm(&mut src, &format!("blk.{l}.attn_q_norm.weight"), HD);
            norm(&mut src, &format!("blk.{l}.attn_k_norm.weight"), HD);
            norm(&mut src, &format!("blk.{l}.post_attention_norm.weight"), D);
            norm(&mut src, &format!("blk.{l}.post_ffw_norm.weight"), D);
        }
    }
    norm(&mut src, "output_norm.weight", D);
    if arch == Arch::Qwen2 {
        mat(&mut src, "output.weight", D, VOCAB, 0.2);
    }
    src
}

/// Random weights packed for the CPU target, with a config for `ctx` positions. Random models
/// have no vocabulary text: an empty tokenizer (no tokens, no byte tokens).
fn owned(arch: Arch, scheme: Scheme, ctx: u32) -> OwnedModel {
    let target = Target::by_name("cpu").unwrap();
    let p = pack(&source(arch), &PackOptions { target, scheme, threads: 2 }).unwrap();
    OwnedModel::new(config(arch, ctx), p, OwnedTokenizerTables::empty())
}

const PROMPT: [u32; 21] =
    [5, 17, 33, 2, 79, 0, 41, 41, 8, 12, 60, 61, 62, 1, 9, 30, 44, 3, 70, 71, 6];

#[test]
fn batched_prefill_equals_stepping_for_every_arch_and_scheme() {
    assert!(PROMPT.len() > MAX_BATCH, "the prompt must span more than one batch");
    for arch in [Arch::Llama, Arch::Qwen2, Arch::Gemma3] {
        for scheme in [Scheme::Fp16, Scheme::Int8, Scheme::Int4Hadamard] {
            let o = owned(arch, scheme, 64);
            let v = o.view();
            let mut arena = vec![0u8; arena_bytes(&o.config, 64)];
            let mut s = Session::new(v.model(), CpuReference, &mut arena).unwrap();
            let batched = s.prefill(&PROMPT).unwrap().to_vec();
            assert!(batched.iter().all(|v| v.is_finite()));
            let mut all = Vec::new();
            s.reset();
            s.eval_all(&PROMPT, |i, l| all.push((i, l.to_vec()))).unwrap();
            assert_eq!(all.len(), PROMPT.len());
            // The batched output head gives the same bits.
            s.reset();
            let mut rows = vec![0f32; MAX_BATCH * VOCAB as usize];
            let mut batched_all = Vec::new();
            s.eval_all_batched(&PROMPT, &mut rows, |i, l| batched_all.push((i, l.to_vec())))
                .unwrap();
            assert_eq!(batched_all, all, "{arch:?}/{scheme:?}: eval_all_batched");
            assert_eq!(s.logits_and_scratch().0.to_vec(), all[PROMPT.len() - 1].1);
            assert!(
                s.eval_all_batched(&PROMPT, &mut rows[1..], |_, _| {}).is_err(),
                "short row buffer"
            );
            s.reset();
            let mut last = Vec::new();
            for (i, &t) in PROMPT.iter().enumerate() {
                last = s.step(t).unwrap().to_vec();
                assert_eq!(last, all[i].1, "{arch:?}/{scheme:?}: position {i}");
            }
            assert_eq!(batched, last, "{arch:?}/{scheme:?}");
            assert_eq!(s.history(), &PROMPT);
            // Positions matter: the same token after a different prefix gives other logits.
            s.reset();
            assert_ne!(s.prefill(&PROMPT[1..]).unwrap().to_vec(), last);
        }
    }
}

/// 60 tokens: the local layers' ring (`WINDOW + MAX_BATCH − 1` = 23 rows) wraps twice.
fn long_tokens(seed: u64) -> Vec<u32> {
    let mut rng = SeededRng::new(seed);
    (0..60).map(|_| (rng.next_u64() % VOCAB) as u32).collect()
}

#[test]
fn sliding_window_ring_gives_the_windowed_attention() {
    let o = owned(Arch::Gemma3, Scheme::Fp16, 64);
    let mut c = o.config;
    assert!(c.cache_rows(0, 64) < 64 && c.cache_rows(1, 64) == 64, "layer 0 keeps a ring");
    let tokens = long_tokens(11);
    let v = o.view();
    let mut arena = vec![0u8; arena_bytes(&c, 64)];
    let mut s = Session::new(v.model(), CpuReference, &mut arena).unwrap();
    let mut all = Vec::new();
    s.eval_all(&tokens, |_, l| all.push(l.to_vec())).unwrap();
    // One token at a time writes the ring row by row; batches of 16 write 16 rows before
    // attending: the same bits.
    s.reset();
    for (i, &t) in tokens.iter().enumerate() {
        assert_eq!(s.step(t).unwrap().to_vec(), all[i], "position {i}");
    }
    // Rewinding within MAX_BATCH positions keeps the ring; further back it cannot.
    assert_eq!(s.truncate(50), 50);
    assert_eq!(s.step(tokens[50]).unwrap().to_vec(), all[50]);
    assert_eq!(s.truncate(20), 0);

    // Every layer local: position p sees tokens p − 2·(WINDOW − 1) ..= p only, so a change at
    // position 0 reaches position 14 and nothing after it.
    c.swa_layers = 0b11;
    let m = Model { config: c, ..v.model() };
    let run = |tokens: &[u32]| {
        let mut arena = vec![0u8; arena_bytes(&c, 64)];
        let mut s = Session::new(m, CpuReference, &mut arena).unwrap();
        let mut all = Vec::new();
        s.eval_all(tokens, |_, l| all.push(l.to_vec())).unwrap();
        all
    };
    let a = run(&tokens);
    let mut changed = tokens.clone();
    changed[0] = (changed[0] + 1) % VOCAB as u32;
    let b = run(&changed);
    let reach = 2 * (WINDOW as usize - 1);
    assert_ne!(a[reach], b[reach]);
    assert_eq!(a[reach + 1..], b[reach + 1..]);
    // And the ring holds the right rows: position p's logits are those of its window alone,
    // evaluated from position 0 (equal up to rope rounding at other absolute positions).
    for p in [30, 45, 59] {
        let alone = run(&tokens[p - reach..=p]);
        let (x, y) = (&a[p], &alone[reach]);
        let err = x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        let scale = x.iter().map(|x| x.abs()).fold(0f32, f32::max);
        assert!(err <= 1e-3 * scale, "position {p}: {err} of {scale}");
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let o = owned(Arch::Qwen2, Scheme::Fp16, 8);
    let v = o.view();
    let (m, c) = (v.model(), o.config);
    let need = arena_bytes(&c, 8);
    let mut small = vec![0u8; need - 1];
    assert!(matches!(
        Session::new(m, CpuReference, &mut small),
        Err(ModelError::ArenaTooSmall { .. })
    ));
    // Any alignment of the arena works.
    let mut arena = vec![0u8; need + 1];
    let mut s = Session::new(m, CpuReference, &mut arena[1..]).unwrap();
    assert_eq!(s.prefill(&[1, 80]).err(), Some(ModelError::BadToken { id: 80, vocab: 80 }));
    assert_eq!(s.pos(), 0, "a rejected call changes nothing");
    assert_eq!(s.prefill(&[]).err(), Some(ModelError::NoTokens));
    s.prefill(&[1; 8]).unwrap();
    assert_eq!(s.step(1).err(), Some(ModelError::ContextFull { context_len: 8 }));
    // Missing tensor, wrong shape, bad config.
    let fewer: Vec<TensorDesc> =
        v.descs().iter().copied().filter(|d| d.name != "blk.1.attn_k.bias").collect();
    let mut a = vec![0u8; need];
    assert_eq!(
        Session::new(
            Model { weights: PackedModel { tensors: &fewer, ..m.weights }, ..m },
            CpuReference,
            &mut a
        )
        .err(),
        Some(ModelError::MissingTensor { layer: Some(1), name: "attn_k.bias" })
    );
    let mut wrong = c;
    wrong.ff = FF as u32 + 1;
    let mut a = vec![0u8; arena_bytes(&wrong, 8)];
    assert!(matches!(
        Session::new(Model { config: wrong, ..m }, CpuReference, &mut a),
        Err(ModelError::Shape { layer: Some(0), .. })
    ));
    let mut bad = c;
    bad.n_kv_heads = 3;
    assert!(matches!(
        Session::new(Model { config: bad, ..m }, CpuReference, &mut a),
        Err(ModelError::BadConfig(_))
    ));
}

#[test]
fn generation_is_deterministic_and_stops() {
    let o = owned(Arch::Llama, Scheme::Int8, 48);
    let (v, c) = (o.view(), o.config);
    let run = |seed: u64, max: usize| {
        let mut arena = vec![0u8; arena_bytes(&c, 48)];
        let mut s = Session::new(v.model(), CpuReference, &mut arena).unwrap();
        let mut sampler = Sampler::new(SamplerConfig {
            seed,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            temperature: 1.5,
            ..SamplerConfig::DEFAULT
        });
        let mut out = Vec::new();
        let r = generate(&mut s, &mut sampler, &PROMPT[..5], max, |t| {
            out.push(t);
            true
        })
        .unwrap();
        (out, r)
    };
    let (a, ra) = run(1, 40);
    assert_eq!(run(1, 40), (a.clone(), ra));
    assert_eq!(ra.n_tokens, a.len());
    assert!(a.iter().all(|&t| t != 2 && t != 3), "end tokens are not emitted");
    match ra.stop {
        StopReason::EndToken(t) => assert!(t == 2 || t == 3),
        StopReason::MaxTokens => assert_eq!(a.len(), 40),
        StopReason::ContextFull => assert_eq!(a.len() + 5, 48 + 1),
        StopReason::Callback => unreachable!(),
    }
    let (b, rb) = run(1, 3);
    assert!(b.len() <= 3 && b[..] == a[..b.len()], "a shorter run is a prefix");
    assert!(matches!(rb.stop, StopReason::MaxTokens | StopReason::EndToken(_)));
}
