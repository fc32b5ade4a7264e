//! Packing: every tensor of a model into one blob in its target's native layout, plus the
//! descriptor table (`npu_runtime::format::TensorDesc`) and a quality report.
//!
//! Blob order: tensors in source (GGUF) order, a synthesized `output.weight` right after
//! `token_embd.weight` when the model ties them; per tensor its shards, K-segment-major then
//! core (exactly one librknnrt B buffer each), then its scale grid `[k_segs][n_pad]` of f32 LE.
//! Every shard and scale grid starts on a 64-byte boundary; padding (K to the K alignment, N
//! to the N tile, gaps between regions) is zero bytes.
//!
//! Determinism: offsets are planned before any data is computed; worker threads quantize
//! disjoint row chunks and hand them to one writer that places each element at its planned
//! byte, so the bytes do not depend on thread count or scheduling; per-chunk statistics are
//! combined in chunk order. No hash maps, no clocks, no paths in the output.

pub mod source;

use crate::quant;
use crate::report::{Report, TensorReport};
use npu_runtime::exec::{self, quant as rq, rotate};
use npu_runtime::format::{
    ElemType, Geometry, Layout, Pipeline, Region, Rotation, Scheme, Shard, TensorDesc, TensorKind,
    BLOB_ALIGN,
};
use npu_runtime::target::Target;
pub use source::{MemSource, SeededRng, SourceTensor, TensorSource};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// What to pack for.
#[derive(Clone, Copy, Debug)]
pub struct PackOptions {
    /// Chip profile.
    pub target: &'static Target,
    /// Scheme for the matmul weights.
    pub scheme: Scheme,
    /// Worker threads (≥ 1); the output does not depend on it.
    pub threads: usize,
}

/// Why packing failed.
#[derive(Debug)]
pub enum PackError {
    /// The target cannot run a scheme, or a descriptor failed its check.
    Runtime(npu_runtime::Error),
    /// Reading a tensor failed.
    Source {
        /// Tensor name.
        tensor: String,
        /// What went wrong.
        msg: String,
    },
    /// A tensor does not fit the target's per-buffer limit or the format's 32-bit sizes.
    TooLarge {
        /// Tensor name.
        tensor: String,
        /// What is too large.
        msg: String,
    },
    /// The tensors disagree with the model's hyperparameters.
    Shapes(crate::shapes::ShapeError),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Runtime(e) => write!(f, "{e}"),
            PackError::Source { tensor, msg } => write!(f, "reading `{tensor}`: {msg}"),
            PackError::TooLarge { tensor, msg } => write!(f, "`{tensor}` is too large: {msg}"),
            PackError::Shapes(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PackError {}

impl From<npu_runtime::Error> for PackError {
    fn from(e: npu_runtime::Error) -> Self {
        PackError::Runtime(e)
    }
}

/// A packed tensor's descriptor, owned (the packer's side of `TensorDesc`).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    /// Name in the table.
    pub name: String,
    /// Index of the source tensor it was made from.
    pub source: usize,
    /// What it is.
    pub kind: TensorKind,
    /// Scheme of its values (`None` for f32 tensors).
    pub scheme: Option<Scheme>,
    /// Pipeline (matmul tensors).
    pub pipeline: Option<Pipeline>,
    /// Byte order of its shards.
    pub layout: Layout,
    /// Padding, segments, cores.
    pub geom: Geometry,
    /// Hadamard rotation, if any.
    pub rotation: Option<Rotation>,
    /// Shards in blob order.
    pub shards: Vec<Shard>,
    /// Scale grid.
    pub scales: Region,
}

impl TensorEntry {
    /// The runtime's view of this entry.
    pub fn desc(&self) -> TensorDesc<'_> {
        TensorDesc {
            name: &self.name,
            kind: self.kind,
            scheme: self.scheme,
            pipeline: self.pipeline,
            layout: self.layout,
            geom: self.geom,
            rotation: self.rotation,
            shards: &self.shards,
            scales: self.scales,
        }
    }
}

/// The result of packing: blob, descriptor table, report.
#[derive(Debug)]
pub struct Packed {
    /// Target packed for.
    pub target: &'static Target,
    /// Model scheme.
    pub scheme: Scheme,
    /// Descriptors, in blob order.
    pub tensors: Vec<TensorEntry>,
    /// The blob.
    pub blob: Vec<u8>,
    /// Quality report.
    pub report: Report,
}

fn align(v: u64) -> u64 {
    v.div_ceil(BLOB_ALIGN) * BLOB_ALIGN
}

fn to_u32(name: &str, what: &str, v: u64) -> Result<u32, PackError> {
    u32::try_from(v).map_err(|_| PackError::TooLarge {
        tensor: name.to_string(),
        msg: format!("{what} = {v} exceeds u32"),
    })
}

/// Plans every tensor: kind, scheme, layout, geometry, rotation and blob offsets. Returns the
/// entries and the blob length. Pure function of the tensor list and options.
pub fn plan(
    sources: &[SourceTensor],
    opts: &PackOptions,
) -> Result<(Vec<TensorEntry>, u64), PackError> {
    let target = opts.target;
    let tied = !sources.iter().any(|s| s.name == "output.weight");
    let mut entries = Vec::new();
    let mut cursor = 0u64;
    for (i, s) in sources.iter().enumerate() {
        if s.dims.contains(&0) {
            let msg = format!("shape {:?} has a zero-length dimension", s.dims);
            return Err(PackError::Source { tensor: s.name.clone(), msg });
        }
        let k = to_u32(&s.name, "row length", s.row_len())?;
        let n = to_u32(&s.name, "rows", s.n_rows())?;
        let mut make = |name: &str,
                        kind: TensorKind,
                        scheme: Option<Scheme>|
         -> Result<(), PackError> {
            let (layout, geom, pipeline, rotation) = match kind {
                TensorKind::Matmul => {
                    let sch = scheme.unwrap_or(opts.scheme);
                    let spec = target.scheme_spec(sch)?;
                    let geom = target.geometry(spec, k, n);
                    let rot = sch.hadamard().then(|| rotate::rotation_for(name, geom.k_pad));
                    (spec.layout, geom, Some(spec.pipeline), rot)
                }
                TensorKind::Embedding => {
                    let elem =
                        if scheme == Some(Scheme::Fp16) { ElemType::F16 } else { ElemType::I8 };
                    (Layout::RowMajor { elem }, Geometry::plan(k, n, 1, 1, k.max(1), 1), None, None)
                }
                TensorKind::F32 => (
                    Layout::RowMajor { elem: ElemType::F32 },
                    Geometry::plan(k, n, 1, 1, k.max(1), 1),
                    None,
                    None,
                ),
            };
            let mut shards = Vec::new();
            for seg in 0..geom.k_segs {
                let (k0, k_len) = geom.seg_range(seg);
                for core in 0..geom.cores {
                    let (n0, n_len) = geom.core_range(core);
                    if n_len == 0 {
                        continue;
                    }
                    let len = layout.byte_len(k_len as usize, n_len as usize) as u64;
                    if len > target.max_buffer {
                        return Err(PackError::TooLarge {
                            tensor: name.to_string(),
                            msg: format!(
                                "shard of {len} bytes exceeds the {} limit of {} bytes per buffer",
                                target.name, target.max_buffer
                            ),
                        });
                    }
                    cursor = align(cursor);
                    shards.push(Shard {
                        k_seg: seg,
                        core,
                        k0,
                        k_len,
                        n0,
                        n_len,
                        data: Region { offset: cursor, len },
                    });
                    cursor += len;
                }
            }
            let scales = if matches!(layout.elem(), ElemType::I8 | ElemType::I4) {
                cursor = align(cursor);
                let r = Region { offset: cursor, len: geom.k_segs as u64 * geom.n_pad as u64 * 4 };
                cursor += r.len;
                r
            } else {
                Region::EMPTY
            };
            entries.push(TensorEntry {
                name: name.to_string(),
                source: i,
                kind,
                scheme: if kind == TensorKind::Matmul {
                    Some(scheme.unwrap_or(opts.scheme))
                } else {
                    scheme
                },
                pipeline,
                layout,
                geom,
                rotation,
                shards,
                scales,
            });
            Ok(())
        };
        let emb_scheme = if opts.scheme == Scheme::Fp16 { Scheme::Fp16 } else { Scheme::Int8 };
        if s.dims.len() == 2 && s.name == "token_embd.weight" {
            make(&s.name, TensorKind::Embedding, Some(emb_scheme))?;
            if tied {
                make("output.weight", TensorKind::Matmul, Some(quant::head_scheme(opts.scheme)))?;
            }
        } else if s.dims.len() == 2 && s.name == "output.weight" {
            make(&s.name, TensorKind::Matmul, Some(quant::head_scheme(opts.scheme)))?;
        } else if s.dims.len() == 2 {
            make(&s.name, TensorKind::Matmul, None)?;
        } else {
            make(&s.name, TensorKind::F32, None)?;
        }
    }
    Ok((entries, align(cursor)))
}

/// Rows of the report's activation batch per matmul tensor.
pub const REPORT_BATCH: usize = 4;

/// The report's activation batch for a tensor: `REPORT_BATCH × k` approximately normal
/// values seeded by the tensor name.
pub fn report_batch(name: &str, k: usize) -> Vec<f32> {
    let mut rng = SeededRng::new(rotate::fnv1a64(name.as_bytes()) ^ 0x5eed);
    (0..REPORT_BATCH * k).map(|_| rng.normal()).collect()
}

/// One unit of work: rows `r0..r1` of entry `entry`.
#[derive(Clone, Copy)]
struct Item {
    entry: usize,
    r0: u32,
    r1: u32,
}

enum Codes {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Int(Vec<i8>),
}

/// Per-chunk error statistics, in the stored (rotated) domain.
#[derive(Clone, Copy, Default)]
struct Stats {
    sum_w2: f64,
    sum_e2: f64,
    max_abs: f64,
}

struct ChunkOut {
    item: usize,
    codes: Codes,
    scales: Vec<f32>,
    stats: Stats,
    /// `[rows][REPORT_BATCH]` reference outputs from the f32 source (matmul entries only).
    yref: Vec<f64>,
}

fn work(
    src: &dyn TensorSource,
    entries: &[TensorEntry],
    batches: &[Vec<f32>],
    it: &Item,
    idx: usize,
) -> Result<ChunkOut, PackError> {
    let e = &entries[it.entry];
    let g = e.geom;
    let (k, kp, rows) = (g.k as usize, g.k_pad as usize, (it.r1 - it.r0) as usize);
    let mut raw = vec![0f32; rows * k];
    src.read_rows(e.source, it.r0 as u64, rows as u64, &mut raw)
        .map_err(|msg| PackError::Source { tensor: e.name.clone(), msg })?;
    let mut stats = Stats::default();
    let mut yref = Vec::new();
    if e.kind == TensorKind::Matmul {
        let x = &batches[it.entry];
        yref.reserve(rows * REPORT_BATCH);
        for r in 0..rows {
            let w = &raw[r * k..(r + 1) * k];
            for m in 0..REPORT_BATCH {
                let xm = &x[m * k..(m + 1) * k];
                yref.push(w.iter().zip(xm).map(|(&a, &b)| a as f64 * b as f64).sum());
            }
        }
    }
    let mut prep = vec![0f32; kp];
    let note = |v: f32, deq: f32, stats: &mut Stats| {
        let d = (v - deq) as f64;
        stats.sum_w2 += v as f64 * v as f64;
        stats.sum_e2 += d * d;
        stats.max_abs = stats.max_abs.max(d.abs());
    };
    let mut scales = Vec::new();
    let codes = match e.layout.elem() {
        ElemType::F32 => {
            for &v in &raw {
                note(v, v, &mut stats);
            }
            Codes::F32(raw)
        }
        ElemType::F16 => {
            let mut out = Vec::with_capacity(rows * kp);
            for r in 0..rows {
                quant::prepare_row(&raw[r * k..(r + 1) * k], e.rotation, &mut prep);
                for &v in &prep {
                    let h = half::f16::from_f32(v);
                    note(v, h.to_f32(), &mut stats);
                    out.push(h.to_bits());
                }
            }
            Codes::F16(out)
        }
        ElemType::I8 | ElemType::I4 => {
            let qmax = if e.layout.elem() == ElemType::I8 { 127 } else { 7 };
            let segs = g.k_segs as usize;
            let mut out = vec![0i8; rows * kp];
            scales = vec![0f32; rows * segs];
            for r in 0..rows {
                quant::prepare_row(&raw[r * k..(r + 1) * k], e.rotation, &mut prep);
                let codes = &mut out[r * kp..(r + 1) * kp];
                let sc = &mut scales[r * segs..(r + 1) * segs];
                quant::quantize_row(&prep, &g, qmax, codes, sc);
                for seg in 0..g.k_segs {
                    let (k0, kl) = g.seg_range(seg);
                    for kk in k0 as usize..(k0 + kl) as usize {
                        note(prep[kk], codes[kk] as f32 * sc[seg as usize], &mut stats);
                    }
                }
            }
            Codes::Int(out)
        }
    };
    Ok(ChunkOut { item: idx, codes, scales, stats, yref })
}

/// Places a chunk's values at their planned bytes.
fn scatter(e: &TensorEntry, it: &Item, out: &ChunkOut, blob: &mut [u8]) {
    let g = e.geom;
    let kp = g.k_pad as usize;
    let layout = e.layout;
    for r in 0..(it.r1 - it.r0) as usize {
        let n = it.r0 + r as u32;
        for sh in e.shards.iter().filter(|s| n >= s.n0 && n < s.n0 + s.n_len) {
            let (kl, nl, n_len) = (sh.k_len as usize, (n - sh.n0) as usize, sh.n_len as usize);
            let run = layout.k_run(kl);
            let row0 = r * kp + sh.k0 as usize;
            for kk in (0..kl).step_by(run) {
                let at = sh.data.offset as usize + layout.byte_offset(kk, nl, kl, n_len);
                let src = row0 + kk;
                match &out.codes {
                    Codes::F32(v) => {
                        for (j, x) in v[src..src + run].iter().enumerate() {
                            blob[at + 4 * j..at + 4 * j + 4].copy_from_slice(&x.to_le_bytes());
                        }
                    }
                    Codes::F16(v) => {
                        for (j, x) in v[src..src + run].iter().enumerate() {
                            blob[at + 2 * j..at + 2 * j + 2].copy_from_slice(&x.to_le_bytes());
                        }
                    }
                    Codes::Int(v) if layout.elem() == ElemType::I8 => {
                        for (j, &x) in v[src..src + run].iter().enumerate() {
                            blob[at + j] = x as u8;
                        }
                    }
                    Codes::Int(v) => {
                        // Even k (even element index) in the low nibble.
                        for (j, pair) in v[src..src + run].chunks_exact(2).enumerate() {
                            blob[at + j] = (pair[0] as u8 & 0x0f) | ((pair[1] as u8 & 0x0f) << 4);
                        }
                    }
                }
            }
        }
        if !out.scales.is_empty() {
            let segs = g.k_segs as usize;
            for seg in 0..segs {
                let at = (e.scales.offset + 4 * (seg as u64 * g.n_pad as u64 + n as u64)) as usize;
                blob[at..at + 4].copy_from_slice(&out.scales[r * segs + seg].to_le_bytes());
            }
        }
    }
}

/// Packs every tensor of `src` for `opts`.
pub fn pack(src: &dyn TensorSource, opts: &PackOptions) -> Result<Packed, PackError> {
    src.check_model().map_err(PackError::Shapes)?;
    let sources = src.tensors();
    let (entries, blob_len) = plan(&sources, opts)?;
    let blob_len = usize::try_from(blob_len).map_err(|_| PackError::TooLarge {
        tensor: String::new(),
        msg: "blob exceeds the address space".into(),
    })?;
    let mut blob = vec![0u8; blob_len];

    // Work items: row chunks of ~1 Mi elements, in whole N tiles.
    let mut items = Vec::new();
    for (ei, e) in entries.iter().enumerate() {
        let g = e.geom;
        let tile = g.n_align.max(1);
        let rows = ((1u32 << 20) / g.k_pad.max(1)).max(1).div_ceil(tile) * tile;
        let mut r0 = 0;
        while r0 < g.n {
            let r1 = (r0 + rows).min(g.n);
            items.push(Item { entry: ei, r0, r1 });
            r0 = r1;
        }
    }
    let batches: Vec<Vec<f32>> = entries
        .iter()
        .map(|e| {
            if e.kind == TensorKind::Matmul {
                report_batch(&e.name, e.geom.k as usize)
            } else {
                Vec::new()
            }
        })
        .collect();

    let mut stats = vec![Stats::default(); items.len()];
    let mut yrefs: Vec<Vec<f64>> = vec![Vec::new(); items.len()];
    let threads = opts.threads.max(1);
    let next = AtomicUsize::new(0);
    let mut first_err: Option<(usize, PackError)> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<ChunkOut, (usize, PackError)>>(2 * threads);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, items, entries, batches) = (&next, &items, &entries, &batches);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(it) = items.get(i) else { break };
                let r = work(src, entries, batches, it, i).map_err(|e| (i, e));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    // Stop handing out work after an error; the lowest failing item wins.
                    next.store(items.len(), Ordering::Relaxed);
                    break;
                }
            });
        }
        drop(tx);
        for r in rx {
            match r {
                Ok(out) => {
                    let it = &items[out.item];
                    scatter(&entries[it.entry], it, &out, &mut blob);
                    stats[out.item] = out.stats;
                    yrefs[out.item] = out.yref;
                }
                Err((i, e)) => {
                    if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_err = Some((i, e));
                    }
                }
            }
        }
    });
    if let Some((_, e)) = first_err {
        return Err(e);
    }
    for e in &entries {
        e.desc().check(blob.len())?;
    }

    // Combine per-entry statistics in item order; reassemble reference outputs.
    let mut reports: Vec<TensorReport> = entries
        .iter()
        .map(|e| {
            TensorReport::new(e, e.shards.iter().map(|s| s.data.len).sum::<u64>() + e.scales.len)
        })
        .collect();
    let mut y_refs: Vec<Vec<f64>> = entries
        .iter()
        .map(|e| {
            if e.kind == TensorKind::Matmul {
                vec![0.0; e.geom.n as usize * REPORT_BATCH]
            } else {
                Vec::new()
            }
        })
        .collect();
    for (i, it) in items.iter().enumerate() {
        let rep = &mut reports[it.entry];
        rep.sum_w2 += stats[i].sum_w2;
        rep.sum_e2 += stats[i].sum_e2;
        rep.max_abs_err = rep.max_abs_err.max(stats[i].max_abs);
        let yr = &mut y_refs[it.entry];
        if !yr.is_empty() {
            let k0 = it.r0 as usize * REPORT_BATCH;
            yr[k0..k0 + yrefs[i].len()].copy_from_slice(&yrefs[i]);
        }
    }
    drop(yrefs);

    // Output error: run the reference executor on each matmul tensor's batch (in parallel,
    // one tensor per task, results stored by index).
    let outs = output_errors(&entries, &blob, &batches, &y_refs, threads)?;
    for (rep, o) in reports.iter_mut().zip(outs) {
        rep.out = o;
    }
    let report = Report { target: opts.target.name, scheme: opts.scheme, tensors: reports };
    Ok(Packed { target: opts.target, scheme: opts.scheme, tensors: entries, blob, report })
}

type OutErr = Option<(f64, f64)>;

fn output_errors(
    entries: &[TensorEntry],
    blob: &[u8],
    batches: &[Vec<f32>],
    y_refs: &[Vec<f64>],
    threads: usize,
) -> Result<Vec<OutErr>, PackError> {
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<OutErr, npu_runtime::Error>>>> =
        entries.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(e) = entries.get(i) else { break };
                let r = if e.kind != TensorKind::Matmul {
                    Ok(None)
                } else {
                    let d = e.desc();
                    let n = e.geom.n as usize;
                    let mut y = vec![0f32; REPORT_BATCH * n];
                    let mut scratch = vec![0f32; exec::scratch_len(&d)];
                    exec::matmul(&d, blob, &batches[i], REPORT_BATCH, &mut y, &mut scratch).map(
                        |()| {
                            let (mut s2, mut e2) = (0f64, 0f64);
                            for m in 0..REPORT_BATCH {
                                for nn in 0..n {
                                    let r = y_refs[i][nn * REPORT_BATCH + m];
                                    let d = y[m * n + nn] as f64 - r;
                                    s2 += r * r;
                                    e2 += d * d;
                                }
                            }
                            Some((s2, e2))
                        },
                    )
                };
                *results[i].lock().unwrap() = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| m.into_inner().unwrap().unwrap_or(Ok(None)).map_err(PackError::from))
        .collect()
}

/// Dequantizes a packed matmul or embedding tensor back to f32 rows `[n][k_pad]` in the stored
/// (rotated) domain, reading the blob through the layout: the inverse of the packer, used by
/// tests to check both directions agree.
pub fn unpack_stored(d: &TensorDesc<'_>, blob: &[u8]) -> Result<Vec<f32>, npu_runtime::Error> {
    d.check(blob.len())?;
    let g = d.geom;
    let (n, kp) = (g.n as usize, g.k_pad as usize);
    let mut out = vec![0f32; n * kp];
    for sh in d.shards {
        let bytes = d.shard_bytes(blob, sh)?;
        let (kl, n_len) = (sh.k_len as usize, sh.n_len as usize);
        for nl in 0..n_len {
            let nn = sh.n0 as usize + nl;
            if nn >= n {
                break;
            }
            let s = d.scale(blob, sh.k_seg, nn as u32);
            for kk in 0..kl {
                let off = d.layout.byte_offset(kk, nl, kl, n_len);
                let v = match d.layout.elem() {
                    ElemType::F32 => f32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()),
                    ElemType::F16 => {
                        half::f16::from_le_bytes([bytes[off], bytes[off + 1]]).to_f32()
                    }
                    ElemType::I8 => bytes[off] as i8 as f32 * s,
                    ElemType::I4 => {
                        let (lo, hi) = exec::nibbles(bytes[off]);
                        (if d.layout.high_nibble(kk, nl, kl, n_len) { hi } else { lo }) as f32 * s
                    }
                };
                out[nn * kp + sh.k0 as usize + kk] = v;
            }
        }
    }
    Ok(out)
}

/// Un-rotates rows from [`unpack_stored`] back to the original domain (`[n][k]`).
pub fn unpack_original(d: &TensorDesc<'_>, blob: &[u8]) -> Result<Vec<f32>, npu_runtime::Error> {
    let stored = unpack_stored(d, blob)?;
    let (k, kp) = (d.geom.k as usize, d.geom.k_pad as usize);
    let mut out = Vec::with_capacity(d.geom.n as usize * k);
    for row in stored.chunks_exact(kp.max(1)) {
        let mut r = row.to_vec();
        if let Some(rot) = d.rotation {
            rotate::unrotate_scaled(rot, &mut r);
        }
        out.extend_from_slice(&r[..k]);
    }
    Ok(out)
}

/// The error bound of a packed matmul against the exact product with the f32 source weight,
/// per output element `(m, n)`. Derivation, in the stored domain (`x' = R x` padded, `w'` the
/// prepared row, `ŵ`, `x̂` what the pipeline multiplies), per K segment with scales `s_w`,
/// `s_a`: `w'x' − ŵx̂ = (w' − ŵ)x' + ŵ(x' − x̂)` and rounding to the grid gives
/// `|w' − ŵ| ≤ s_w/2`, `|x' − x̂| ≤ s_a/2`, so each term is at most
/// `|x'|·s_w/2 + |ŵ|·s_a/2` (plus `s_w·s_a/4` of slack for the clamp at ±qmax). For fp16 the
/// step is half an fp16 ulp of each operand: relative 2⁻¹¹ each, absolute 2⁻²⁵ in the subnormal
/// range. On top, f32 arithmetic: the executor's products, scale multiplications and segment
/// sum, the fp16 K-sum, and the f32 rotation of `x` (log₂B butterfly levels) — each a relative
/// 2⁻²⁴ per operation, bounded generously by `ε·(Σ|ŵx̂| + bound)·(ops)`.
///
/// Computed in f64 from the packed bytes; used by tests only.
pub fn error_bound(
    d: &TensorDesc<'_>,
    blob: &[u8],
    x: &[f32],
    m: usize,
) -> Result<Vec<f64>, npu_runtime::Error> {
    let g = d.geom;
    let (k, kp, n) = (g.k as usize, g.k_pad as usize, g.n as usize);
    let w = unpack_stored(d, blob)?;
    let pipeline = d.pipeline.ok_or(npu_runtime::Error::WrongKind)?;
    let qmax = pipeline.qmax();
    let eps = f32::EPSILON as f64;
    let rot_ops = d.rotation.map_or(0.0, |r| {
        let b = r.block as f64;
        (r.block.trailing_zeros() as f64 + 1.0) * b.sqrt()
    });
    let mut bound = vec![0f64; m * n];
    let mut xr = vec![0f32; kp];
    for row in 0..m {
        xr[..k].copy_from_slice(&x[row * k..(row + 1) * k]);
        xr[k..].fill(0.0);
        if let Some(rot) = d.rotation {
            rotate::rotate(rot, &mut xr);
        }
        for seg in 0..g.k_segs {
            let (k0, kl) = g.seg_range(seg);
            let r = k0 as usize..(k0 + kl) as usize;
            let s_a =
                if qmax > 0 { rq::scale_for(rq::absmax(&xr[r.clone()]), qmax) as f64 } else { 0.0 };
            for nn in 0..n {
                let s_w = if qmax > 0 { d.scale(blob, seg, nn as u32) as f64 } else { 0.0 };
                let (mut b, mut mag) = (0f64, 0f64);
                for kk in r.clone() {
                    let xv = xr[kk] as f64;
                    let wv = w[nn * kp + kk] as f64;
                    mag += (xv * wv).abs();
                    b += if qmax > 0 {
                        xv.abs() * s_w / 2.0 + wv.abs() * s_a / 2.0 + s_w * s_a / 4.0
                    } else {
                        (xv * wv).abs() * (2.0 / 2048.0) * 1.001
                            + (xv.abs() + wv.abs()) * 2f64.powi(-25)
                    };
                }
                let ops =
                    if qmax > 0 { 4.0 } else { kl as f64 + 2.0 } + g.k_segs as f64 + 2.0 + rot_ops;
                bound[row * n + nn] += b + eps * (mag + b) * ops;
            }
        }
    }
    Ok(bound)
}

impl Packed {
    /// The runtime's view of every tensor (borrowing this value).
    pub fn descs(&self) -> Vec<TensorDesc<'_>> {
        self.tensors.iter().map(|t| t.desc()).collect()
    }

    /// FNV-1a 64 of the blob (the digest in `tensors.json`).
    pub fn blob_digest(&self) -> u64 {
        rotate::fnv1a64(&self.blob)
    }

    /// `tensors.json`: the descriptor table.
    pub fn tensors_json(&self) -> String {
        use crate::report::json_str;
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = write!(
            o,
            "{{\n  \"format_version\": {},\n  \"target\": ",
            npu_runtime::format::FORMAT_VERSION
        );
        json_str(&mut o, self.target.name);
        o.push_str(",\n  \"scheme\": ");
        json_str(&mut o, self.scheme.name());
        let _ = write!(
            o,
            ",\n  \"blob_align\": {},\n  \"blob_len\": {},\n  \"blob_fnv1a64\": \"{:016x}\",\n  \"tensors\": [",
            BLOB_ALIGN,
            self.blob.len(),
            self.blob_digest()
        );
        for (i, t) in self.tensors.iter().enumerate() {
            o.push_str(if i == 0 { "\n    {" } else { ",\n    {" });
            o.push_str("\"name\": ");
            json_str(&mut o, &t.name);
            let _ = write!(o, ", \"kind\": \"{}\", \"scheme\": ", t.kind.name());
            match t.scheme {
                Some(s) => json_str(&mut o, s.name()),
                None => o.push_str("null"),
            }
            o.push_str(", \"pipeline\": ");
            match t.pipeline {
                Some(p) => {
                    let _ = write!(
                        o,
                        "{{\"name\": \"{}\", \"rknn_matmul_type\": {}, \"acc_bits\": {}}}",
                        p.name(),
                        p.rknn_matmul_type(),
                        p.acc_bits()
                    );
                }
                None => o.push_str("null"),
            }
            let _ = write!(
                o,
                ", \"layout\": {{\"name\": \"{}\", \"elem\": \"{}\"",
                t.layout.name(),
                t.layout.elem().name()
            );
            if let Layout::Tiled { n_tile, k_tile, .. } = t.layout {
                let _ = write!(o, ", \"n_tile\": {n_tile}, \"k_tile\": {k_tile}");
            }
            let g = t.geom;
            let _ = write!(
                o,
                "}}, \"k\": {}, \"n\": {}, \"k_pad\": {}, \"n_pad\": {}, \"k_align\": {}, \"n_align\": {}, \"k_seg_len\": {}, \"k_segs\": {}, \"cores\": {}, \"rotation\": ",
                g.k, g.n, g.k_pad, g.n_pad, g.k_align, g.n_align, g.k_seg_len, g.k_segs, g.cores
            );
            match t.rotation {
                Some(r) => {
                    let _ = write!(o, "{{\"block\": {}, \"seed\": \"{:016x}\"}}", r.block, r.seed);
                }
                None => o.push_str("null"),
            }
            let _ = write!(
                o,
                ", \"scales\": {{\"offset\": {}, \"len\": {}}}, \"shards\": [",
                t.scales.offset, t.scales.len
            );
            for (j, s) in t.shards.iter().enumerate() {
                if j > 0 {
                    o.push_str(", ");
                }
                let _ = write!(
                    o,
                    "{{\"k_seg\": {}, \"core\": {}, \"k0\": {}, \"k_len\": {}, \"n0\": {}, \"n_len\": {}, \"offset\": {}, \"len\": {}}}",
                    s.k_seg, s.core, s.k0, s.k_len, s.n0, s.n_len, s.data.offset, s.data.len
                );
            }
            o.push_str("]}");
        }
        o.push_str("\n  ]\n}\n");
        o
    }

    /// Writes `model.blob`, `tensors.json` and `report.json` into `dir` (created if missing),
    /// each through a temporary file renamed into place.
    pub fn write_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let put = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, dir.join(name))
        };
        put("model.blob", &self.blob)?;
        put("tensors.json", self.tensors_json().as_bytes())?;
        put("report.json", self.report.to_json().as_bytes())
    }
}
