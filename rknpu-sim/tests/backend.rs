//! `RknpuBackend` against the reference executors, through the stand-in `librknnrt.so` loaded
//! with dlopen exactly as on a board: bit-exact matmuls for every scheme, chip and odd shape,
//! rows in one bucket or several chunks, several IOMMU domains; greedy tokens of the tiny
//! model equal to the CPU's; every core used, concurrently; and the failures as error values.
//!
//! The tests set `RKNN_SIM_*` variables that the library reads: they run one at a time.

use npu_build::gguf::Gguf;
use npu_build::model::OwnedModel;
use npu_build::pack::{pack, MemSource, PackOptions, Packed, SeededRng};
use npu_runtime::backend::{Backend, CpuReference, PackedWeight};
use npu_runtime::exec;
use npu_runtime::format::{PackedModel, Scheme, TensorDesc};
use npu_runtime::generate::generate;
use npu_runtime::model::{arena_bytes, Model, Session};
use npu_runtime::rknpu::{plan, Rknn, RknpuBackend, RknpuError};
use npu_runtime::sampler::{Sampler, SamplerConfig};
use npu_runtime::target::Target;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for v in ["RKNN_SIM_CHIP", "RKNN_SIM_VERSION", "RKNN_SIM_DEVICE", "RKNN_SIM_STATS"] {
        std::env::remove_var(v);
    }
    g
}

/// The cdylib cargo built next to this test binary (`deps/librknnrt.so`).
fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    for p in [deps.join("librknnrt.so"), deps.parent().unwrap().join("librknnrt.so")] {
        if p.exists() {
            return p;
        }
    }
    panic!("librknnrt.so not found next to {}", exe.display());
}

fn lib() -> Arc<Rknn> {
    Arc::new(Rknn::load_from(lib_path(), true).unwrap())
}

#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
struct CoreStats {
    calls: u64,
    a_bytes: u64,
    b_bytes: u64,
    c_bytes: u64,
    macs: u64,
}

/// The stand-in's own counters, read through its extra exports.
struct Sim {
    lib: libloading::Library,
}

impl Sim {
    fn open() -> Sim {
        // SAFETY: the stand-in has no initialisers.
        Sim { lib: unsafe { libloading::Library::new(lib_path()) }.unwrap() }
    }
    fn core(&self, c: u32) -> CoreStats {
        let mut s = CoreStats::default();
        // SAFETY: the stand-in's `rknn_sim_core_stats(u32, *mut SimCoreStats) -> int`.
        unsafe {
            let f: libloading::Symbol<unsafe extern "C" fn(u32, *mut CoreStats) -> i32> =
                self.lib.get(b"rknn_sim_core_stats").unwrap();
            assert_eq!(f(c, &mut s), 0);
        }
        s
    }
    fn peak(&self) -> u32 {
        // SAFETY: `rknn_sim_peak_concurrency() -> u32`.
        unsafe {
            self.lib.get::<unsafe extern "C" fn() -> u32>(b"rknn_sim_peak_concurrency").unwrap()()
        }
    }
    fn domain_used(&self, d: u32) -> u64 {
        // SAFETY: `rknn_sim_domain_used(u32) -> u64`.
        unsafe {
            self.lib.get::<unsafe extern "C" fn(u32) -> u64>(b"rknn_sim_domain_used").unwrap()(d)
        }
    }
    fn reset(&self) {
        // SAFETY: `rknn_sim_reset_stats()`.
        unsafe { self.lib.get::<unsafe extern "C" fn()>(b"rknn_sim_reset_stats").unwrap()() }
    }
}

fn random(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..len).map(|i| rng.normal() * scale * if i % 97 == 0 { 10.0 } else { 1.0 }).collect()
}

/// Several matmul tensors of awkward shapes: K under a tile, odd, several int4 segments; N of
/// one channel, odd, spanning cores.
fn source() -> MemSource {
    let mut s = MemSource::default();
    for (i, &(n, k)) in
        [(1usize, 33usize), (70, 200), (130, 1500), (37, 577), (200, 64)].iter().enumerate()
    {
        s.push(
            &format!("blk.{i}.ffn_up.weight"),
            &[k as u64, n as u64],
            random(i as u64 + 7, n * k, 0.05),
        );
    }
    s
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_all(p: &Packed, b: &mut RknpuBackend, ms: &[usize], what: &str) {
    let descs = p.descs();
    for d in &descs {
        let pw = PackedWeight::new(d, &p.blob).unwrap();
        let (k, n) = (d.geom.k as usize, d.geom.n as usize);
        for &m in ms {
            let mut x = random(m as u64 * 31 + k as u64, m * k, 1.0);
            if m > 1 {
                x[k..2 * k].fill(0.0); // a zero row: scale 0
            }
            let mut want = vec![0f32; m * n];
            let mut scratch = vec![0f32; exec::scratch_len(d)];
            exec::matmul(d, &p.blob, &x, m, &mut want, &mut scratch).unwrap();
            let mut got = vec![f32::NAN; m * n];
            b.matmul(&pw, &x, m, &mut got, &mut []).unwrap();
            assert!(
                bits(&got) == bits(&want),
                "{what} {} m={m}: first difference at {:?}",
                d.name,
                got.iter().zip(&want).position(|(a, b)| a.to_bits() != b.to_bits())
            );
        }
    }
}

fn packed_model<'a>(p: &'a Packed, descs: &'a [TensorDesc<'a>]) -> PackedModel<'a> {
    PackedModel { target: p.target.id, scheme: p.scheme, tensors: descs, blob: &p.blob }
}

#[test]
fn matmuls_are_bit_exact_on_every_chip_and_scheme() {
    let _g = serial();
    let sim = Sim::open();
    let src = source();
    for (chip, target) in [("rk3588", "rk3588"), ("rk3576", "rk3576"), ("rk3566", "rk3566")] {
        std::env::set_var("RKNN_SIM_CHIP", chip);
        let t = Target::by_name(target).unwrap();
        for s in Scheme::ALL {
            if t.scheme_spec(s).is_err() {
                continue;
            }
            let p = pack(&src, &PackOptions { target: t, scheme: s, threads: 1 }).unwrap();
            let descs = p.descs();
            sim.reset();
            let mut b = RknpuBackend::with_library(lib(), &packed_model(&p, &descs)).unwrap();
            // 1 and 16 are the buckets; 3 pads to 16; 19 and 40 run in chunks.
            check_all(&p, &mut b, &[1, 3, 16, 19, 40], &format!("{chip}/{}", s.name()));
            let used: Vec<u64> = (0..t.cores).map(|c| sim.core(c).calls).collect();
            assert!(used.iter().all(|&c| c > 0), "{chip}/{}: runs per core {used:?}", s.name());
            assert_eq!(
                b.calls_per_core()[..t.cores as usize],
                used[..],
                "backend and library agree"
            );
            if t.cores == 3 {
                assert!(sim.peak() >= 2, "cores never ran at once (peak {})", sim.peak());
            }
        }
    }
}

#[test]
fn several_iommu_domains() {
    let _g = serial();
    let sim = Sim::open();
    let t = Target::by_name("rk3588").unwrap();
    let p = pack(&source(), &PackOptions { target: t, scheme: Scheme::Int8, threads: 1 }).unwrap();
    let descs = p.descs();
    // A budget of the largest tensor forces several domains.
    let budget = descs.iter().map(plan::tensor_bytes).max().unwrap();
    let tot = plan::totals(&descs, budget, |_, _, _| {}).unwrap();
    assert!(tot.domains >= 3, "{tot:?}");
    let mut b =
        RknpuBackend::with_library_budget(lib(), &packed_model(&p, &descs), budget).unwrap();
    assert_eq!(b.stats().domains, tot.domains);
    assert_eq!(b.stats().buffers, tot.buffers(), "the backend allocates what the plan counts");
    for d in 0..tot.domains {
        assert!(sim.domain_used(d) > 0, "domain {d} unused");
    }
    check_all(&p, &mut b, &[1, 5], "rk3588/int8 in domains");
    // A tensor larger than the budget is an error, not a crash.
    let e = RknpuBackend::with_library_budget(lib(), &packed_model(&p, &descs), 1000).unwrap_err();
    assert!(matches!(e, RknpuError::Plan(_)), "{e}");
}

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny/moby-tiny.gguf")
}

fn greedy<B: Backend>(model: Model<'_>, backend: B, prompt: &[u32]) -> Vec<u32> {
    let mut arena = vec![0u8; arena_bytes(&model.config, model.config.context_len)];
    let mut s = Session::new(model, backend, &mut arena).unwrap();
    let mut sampler = Sampler::new(SamplerConfig::GREEDY);
    let mut out = Vec::new();
    generate(&mut s, &mut sampler, prompt, 24, |id| {
        out.push(id);
        true
    })
    .unwrap();
    out
}

#[test]
fn tiny_model_tokens_equal_the_cpu_for_every_scheme() {
    let _g = serial();
    let sim = Sim::open();
    let g = Gguf::open(tiny()).unwrap();
    // A prompt longer than one bucket (chunks of 16 rows) and a single-row decode.
    let prompt: Vec<u32> = (0..21).map(|i| 20 + i * 7).collect();
    let t = Target::by_name("rk3588").unwrap();
    for s in Scheme::ALL {
        let opts = PackOptions { target: t, scheme: s, threads: 1 };
        let owned = OwnedModel::from_gguf(&g, &opts, Some(128)).unwrap();
        let view = owned.view();
        sim.reset();
        let want = greedy(view.model(), CpuReference, &prompt);
        let b = RknpuBackend::with_library(lib(), &view.model().weights).unwrap();
        let got = greedy(view.model(), b, &prompt);
        assert_eq!(got, want, "{}", s.name());
        let calls: Vec<u64> = (0..3).map(|c| sim.core(c).calls).collect();
        assert!(calls.iter().all(|&c| c > 0), "{}: {calls:?}", s.name());
        eprintln!(
            "moby-tiny rk3588/{}: {} tokens equal; runs per core {calls:?}",
            s.name(),
            got.len()
        );
    }
}

#[test]
fn failures_are_error_values() {
    let _g = serial();
    let t = Target::by_name("rk3588").unwrap();
    let p = pack(&source(), &PackOptions { target: t, scheme: Scheme::Int4, threads: 1 }).unwrap();
    let descs = p.descs();
    let pm = packed_model(&p, &descs);
    // Missing library: names the file and the variable.
    let e = Rknn::load_from(PathBuf::from("/nonexistent/librknnrt.so"), true).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("/nonexistent/librknnrt.so") && msg.contains("NPU_RKNN_LIB"), "{msg}");
    // A library without the matmul API.
    let e = Rknn::load_from(PathBuf::from("libm.so.6"), false).unwrap_err();
    assert!(matches!(e, RknpuError::MissingSymbol { .. }), "{e}");
    // No device.
    std::env::set_var("RKNN_SIM_DEVICE", "0");
    let e = RknpuBackend::with_library(lib(), &pm).unwrap_err();
    assert!(matches!(e, RknpuError::Call { call: "rknn_matmul_create", code: -3, .. }), "{e}");
    assert!(lib().probe().is_err());
    std::env::remove_var("RKNN_SIM_DEVICE");
    assert!(lib().probe().is_ok());
    // int4 on a 1.5.2 library: unsupported type, naming the tensor.
    std::env::set_var("RKNN_SIM_VERSION", "1.5.2");
    let e = RknpuBackend::with_library(lib(), &pm).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("rknn_matmul_create returned -5") && msg.contains("blk.0.ffn_up.weight"),
        "{msg}"
    );
    std::env::remove_var("RKNN_SIM_VERSION");
    // int4 on RK3566 (no int4 pipeline there).
    std::env::set_var("RKNN_SIM_CHIP", "rk3566");
    assert!(RknpuBackend::with_library(lib(), &pm).is_err());
    std::env::remove_var("RKNN_SIM_CHIP");
    // A model for the cpu target.
    let pc = pack(
        &source(),
        &PackOptions { target: Target::by_name("cpu").unwrap(), scheme: Scheme::Int8, threads: 1 },
    )
    .unwrap();
    let dc = pc.descs();
    let e = RknpuBackend::with_library(lib(), &packed_model(&pc, &dc)).unwrap_err();
    assert!(matches!(e, RknpuError::NotRknpuModel { .. }), "{e}");
    // A tensor the backend was not set up for.
    let mut b = RknpuBackend::with_library(lib(), &pm).unwrap();
    let other =
        pack(&source(), &PackOptions { target: t, scheme: Scheme::Int8, threads: 1 }).unwrap();
    let od = other.descs();
    let pw = PackedWeight::new(&od[0], &other.blob).unwrap();
    let (k, n) = (od[0].geom.k as usize, od[0].geom.n as usize);
    assert!(b.matmul(&pw, &vec![0.0; k], 1, &mut vec![0.0; n], &mut []).is_err());
}
