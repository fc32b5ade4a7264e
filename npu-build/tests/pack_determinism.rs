//! Same input and options → byte-identical blob, tensors.json and report.json, whatever the
//! thread count.

mod pack_common;
use npu_build::pack::{pack, MemSource, PackOptions};
use npu_runtime::format::Scheme;
use npu_runtime::target::Target;
use pack_common::random_matrix;

#[test]
fn identical_bytes_across_thread_counts() {
    let mut src = MemSource::default();
    src.push("token_embd.weight", &[96, 300], random_matrix(1, 300, 96));
    for l in 0..3 {
        src.push(&format!("blk.{l}.attn_norm.weight"), &[96], random_matrix(2 + l, 1, 96));
        src.push(&format!("blk.{l}.attn_q.weight"), &[96, 96], random_matrix(10 + l, 96, 96));
        src.push(&format!("blk.{l}.ffn_down.weight"), &[700, 96], random_matrix(20 + l, 96, 700));
    }
    for t in ["rk3588", "cpu"] {
        for s in [Scheme::Fp16, Scheme::Int8Hadamard, Scheme::Int4] {
            let opts =
                |threads| PackOptions { target: Target::by_name(t).unwrap(), scheme: s, threads };
            let a = pack(&src, &opts(1)).unwrap();
            let b = pack(&src, &opts(4)).unwrap();
            assert!(a.blob == b.blob, "{t} {}", s.name());
            assert_eq!(a.tensors_json(), b.tensors_json());
            assert_eq!(a.report.to_json(), b.report.to_json());
            assert!(a.blob.len().is_multiple_of(64));
        }
    }
}
