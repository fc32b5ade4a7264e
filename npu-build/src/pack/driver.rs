//! The driver: the plan first, then the tensors one at a time in blob order, each streamed
//! to the blob's writer as soon as it is packed, so memory holds a tensor or two, never the
//! blob.
//!
//! Per tensor, worker threads take row chunks from a shared counter and send them to the
//! calling thread, which scatters each at its planned bytes of the tensor's buffer; nothing
//! written depends on which thread did a chunk or when it arrived. The finished buffer goes
//! to a second thread, which measures the tensor's output error and writes the buffer at its
//! offset (zero bytes in the gaps) while the next tensor is packed. The channel between them
//! holds no tensor, so at most two tensors' buffers exist at once.

use super::plan::{self, Plan};
use super::sink::{BlobDigest, BlobSink};
use super::{scatter, PackError, PackOptions, Packed, PackedTable, TensorEntry, TensorSource};
use crate::quant;
use crate::report::{self, Report, TensorReport, WeightStats, REPORT_BATCH};
use npu_runtime::format::{Region, TensorKind};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Rows `r0..r1` of the tensor being packed.
#[derive(Clone, Copy)]
struct Item {
    r0: u32,
    r1: u32,
}

/// A worker's result for one item.
struct ChunkOut {
    item: usize,
    encoded: quant::Encoded,
    stats: WeightStats,
    /// `[rows][REPORT_BATCH]` reference outputs from the f32 source (matmul entries only).
    yref: Vec<f64>,
}

/// What the workers of one tensor share, read-only.
struct Job<'a> {
    src: &'a dyn TensorSource,
    /// The entry, its offsets relative to the tensor's buffer.
    entry: &'a TensorEntry,
    items: &'a [Item],
    /// The entry's report batch (empty unless matmul).
    batch: &'a [f32],
}

/// One packed tensor on its way to the writer.
struct Done {
    /// Its blob offset.
    base: u64,
    /// The entry, its offsets relative to `bytes`.
    local: TensorEntry,
    /// Its bytes, from `base` to the end of its last region.
    bytes: Vec<u8>,
    report: TensorReport,
    /// `[n][REPORT_BATCH]` reference outputs (matmul entries only).
    y_ref: Vec<f64>,
    batch: Vec<f32>,
}

/// Checks the model and plans every tensor, before anything is packed: the blob's length and
/// every descriptor are known (and checked) here.
pub fn plan(src: &dyn TensorSource, opts: &PackOptions) -> Result<Plan, PackError> {
    src.check_model().map_err(PackError::Shapes)?;
    let p = plan::plan(&src.tensors(), opts)?;
    let blob_len = usize::try_from(p.blob_len).map_err(|_| PackError::TooLarge {
        tensor: String::new(),
        msg: "blob exceeds the address space".into(),
    })?;
    for e in &p.entries {
        e.desc().check(blob_len)?;
    }
    Ok(p)
}

/// Packs every tensor of `src` for `opts` into memory ([`pack_to`] into a `Vec`).
pub fn pack(src: &dyn TensorSource, opts: &PackOptions) -> Result<Packed, PackError> {
    let p = plan(src, opts)?;
    let cap = usize::try_from(p.blob_len).unwrap_or(0);
    let (blob, t) = pack_planned(src, opts, p, Vec::with_capacity(cap))?;
    Ok(Packed { target: t.target, scheme: t.scheme, tensors: t.tensors, blob, report: t.report })
}

/// Packs every tensor of `src` for `opts`, writing the blob to `out` from its first byte to
/// its last. Returns the writer (flushed) and everything but the blob.
pub fn pack_to<W: Write + Send>(
    src: &dyn TensorSource,
    opts: &PackOptions,
    out: W,
) -> Result<(W, PackedTable), PackError> {
    let p = plan(src, opts)?;
    pack_planned(src, opts, p, out)
}

/// [`pack_to`] with the plan already made by [`plan`] (for the same source and options).
pub fn pack_planned<W: Write + Send>(
    src: &dyn TensorSource,
    opts: &PackOptions,
    plan: Plan,
    out: W,
) -> Result<(W, PackedTable), PackError> {
    let threads = opts.threads.max(1);
    let entries = &plan.entries;
    let (written, failed) = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Done>(0);
        let writer = scope.spawn(move || write_all(rx, entries.len(), plan.blob_len, out));
        let mut failed = None;
        for e in entries {
            match pack_entry(src, e, threads) {
                // A closed channel means the writer failed; its error is returned below.
                Ok(done) => {
                    if tx.send(done).is_err() {
                        break;
                    }
                }
                Err(err) => {
                    failed = Some(err);
                    break;
                }
            }
        }
        drop(tx);
        (writer.join().expect("the blob writer does not panic"), failed)
    });
    // The writer only ever saw tensors before the one that failed to pack: its error first.
    let (out, digest, reports) = match (written?, failed) {
        (_, Some(e)) => return Err(e),
        (Some(w), None) => w,
        (None, None) => unreachable!("every tensor reached the writer"),
    };
    let report = Report { target: opts.target.name, scheme: opts.scheme, tensors: reports };
    let table = PackedTable {
        target: opts.target,
        scheme: opts.scheme,
        tensors: plan.entries,
        report,
        blob_len: digest.len,
        blob_sha256: digest.sha256,
        blob_fnv1a64: digest.fnv1a64,
    };
    Ok((out, table))
}

type Written<W> = Option<(W, BlobDigest, Vec<TensorReport>)>;

/// The writer thread: each tensor's output error, then its bytes at its offset; the blob's
/// tail padding once all `n` tensors arrived. `None` when fewer arrived (packing failed).
fn write_all<W: Write>(
    rx: mpsc::Receiver<Done>,
    n: usize,
    blob_len: u64,
    out: W,
) -> Result<Written<W>, PackError> {
    let io = |e: std::io::Error| PackError::Io(format!("writing the blob: {e}"));
    let mut sink = BlobSink::new(out);
    let mut reports = Vec::with_capacity(n);
    for d in rx {
        let mut rep = d.report;
        if d.local.kind == TensorKind::Matmul {
            let o = report::output_error(&d.local.desc(), &d.bytes, &d.batch, &d.y_ref)?;
            rep.out = Some(o);
        }
        sink.zeros_to(d.base).map_err(io)?;
        sink.put(&d.bytes).map_err(io)?;
        reports.push(rep);
    }
    if reports.len() < n {
        return Ok(None);
    }
    sink.zeros_to(blob_len).map_err(io)?;
    let (out, digest) = sink.finish().map_err(io)?;
    Ok(Some((out, digest, reports)))
}

/// The blob range an entry's shards and scale grid cover.
fn span(e: &TensorEntry) -> (u64, u64) {
    let regions = e.shards.iter().map(|s| s.data).chain([e.scales]).filter(|r| r.len > 0);
    let start = regions.clone().map(|r| r.offset).min().unwrap_or(0);
    let end = regions.map(|r| r.offset + r.len).max().unwrap_or(start);
    (start, end)
}

/// `e` with every offset moved back by `base`.
fn rebased(e: &TensorEntry, base: u64) -> TensorEntry {
    let back =
        |r: Region| if r.len == 0 { r } else { Region { offset: r.offset - base, len: r.len } };
    let mut local = e.clone();
    for s in &mut local.shards {
        s.data = back(s.data);
    }
    local.scales = back(e.scales);
    local
}

/// Packs one tensor into its own buffer, with its weight statistics combined in item order
/// and its reference outputs as `[n][REPORT_BATCH]`.
fn pack_entry(src: &dyn TensorSource, e: &TensorEntry, threads: usize) -> Result<Done, PackError> {
    let (base, end) = span(e);
    let local = rebased(e, base);
    let items = work_items(e);
    let batch = match e.kind {
        TensorKind::Matmul => report::report_batch(&e.name, e.geom.k as usize),
        _ => Vec::new(),
    };
    let mut bytes = vec![0u8; (end - base) as usize];
    let job = Job { src, entry: &local, items: &items, batch: &batch };
    let (stats, yrefs) = run_items(&job, threads, &mut bytes)?;
    let size = e.shards.iter().map(|s| s.data.len).sum::<u64>() + e.scales.len;
    let mut report = TensorReport::new(&e.desc(), size);
    let mut y_ref = match e.kind {
        TensorKind::Matmul => vec![0.0; e.geom.n as usize * REPORT_BATCH],
        _ => Vec::new(),
    };
    for ((it, st), yr) in items.iter().zip(&stats).zip(yrefs) {
        report.add(st);
        if !y_ref.is_empty() {
            let at = it.r0 as usize * REPORT_BATCH;
            y_ref[at..at + yr.len()].copy_from_slice(&yr);
        }
    }
    Ok(Done { base, local, bytes, report, y_ref, batch })
}

/// Row chunks of ~1 Mi elements, in whole N tiles.
fn work_items(e: &TensorEntry) -> Vec<Item> {
    let g = e.geom;
    let tile = g.n_align.max(1);
    let rows = ((1u32 << 20) / g.k_pad.max(1)).max(1).div_ceil(tile) * tile;
    let mut items = Vec::new();
    let mut r0 = 0;
    while r0 < g.n {
        let r1 = (r0 + rows).min(g.n);
        items.push(Item { r0, r1 });
        r0 = r1;
    }
    items
}

/// Reads, encodes and measures one item.
fn work(job: &Job<'_>, idx: usize) -> Result<ChunkOut, PackError> {
    let it = job.items[idx];
    let e = job.entry;
    let (k, rows) = (e.geom.k as usize, (it.r1 - it.r0) as usize);
    let mut raw = vec![0f32; rows * k];
    job.src
        .read_rows(e.source, it.r0 as u64, rows as u64, &mut raw)
        .map_err(|msg| PackError::Source { tensor: e.name.clone(), msg })?;
    let yref = match e.kind {
        TensorKind::Matmul => report::reference_outputs(&raw, k, job.batch),
        _ => Vec::new(),
    };
    let mut stats = WeightStats::default();
    let encoded = quant::encode_rows(raw, rows, e.layout.elem(), &e.geom, e.rotation, |v, d| {
        stats.note(v, d)
    });
    Ok(ChunkOut { item: idx, encoded, stats, yref })
}

/// Runs every item of the job on up to `threads` workers and scatters the results into
/// `bytes`. Returns each item's statistics and reference outputs, by item index; on failure
/// the error of the lowest failing item.
fn run_items(
    job: &Job<'_>,
    threads: usize,
    bytes: &mut [u8],
) -> Result<(Vec<WeightStats>, Vec<Vec<f64>>), PackError> {
    let n = job.items.len();
    let mut stats = vec![WeightStats::default(); n];
    let mut yrefs: Vec<Vec<f64>> = vec![Vec::new(); n];
    let next = AtomicUsize::new(0);
    let mut first_err: Option<(usize, PackError)> = None;
    let workers = threads.min(n).max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<ChunkOut, (usize, PackError)>>(2 * workers);
        for _ in 0..workers {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = work(job, i).map_err(|e| (i, e));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    // Stop handing out work after an error; the lowest failing item wins.
                    next.store(n, Ordering::Relaxed);
                    break;
                }
            });
        }
        drop(tx);
        for r in rx {
            match r {
                Ok(out) => {
                    let it = job.items[out.item];
                    scatter::scatter(job.entry, (it.r0, it.r1), &out.encoded, bytes);
                    stats[out.item] = out.stats;
                    yrefs[out.item] = out.yref;
                }
                Err((i, e)) if first_err.as_ref().is_none_or(|(j, _)| i < *j) => {
                    first_err = Some((i, e));
                }
                Err(_) => {}
            }
        }
    });
    match first_err {
        Some((_, e)) => Err(e),
        None => Ok((stats, yrefs)),
    }
}
