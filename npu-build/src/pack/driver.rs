//! The threaded driver: row chunks quantized by worker threads, placed by one writer, their
//! statistics combined in chunk order, then each matmul tensor's output error measured.
//!
//! Worker threads take chunks from a shared counter and send them to the calling thread,
//! which scatters each at its planned bytes; nothing written depends on which thread did a
//! chunk or when it arrived.

use super::{plan, scatter, PackError, PackOptions, Packed, TensorEntry, TensorSource};
use crate::quant;
use crate::report::{self, Report, TensorReport, WeightStats, REPORT_BATCH};
use npu_runtime::format::TensorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

/// One unit of work: rows `r0..r1` of entry `entry`.
#[derive(Clone, Copy)]
struct Item {
    entry: usize,
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

/// Everything the workers share, read-only.
struct Job<'a> {
    src: &'a dyn TensorSource,
    entries: &'a [TensorEntry],
    items: &'a [Item],
    /// Per entry, its report batch (empty unless matmul).
    batches: &'a [Vec<f32>],
}

/// Packs every tensor of `src` for `opts`.
pub fn pack(src: &dyn TensorSource, opts: &PackOptions) -> Result<Packed, PackError> {
    src.check_model().map_err(PackError::Shapes)?;
    let (entries, blob_len) = plan::plan(&src.tensors(), opts)?;
    let blob_len = usize::try_from(blob_len).map_err(|_| PackError::TooLarge {
        tensor: String::new(),
        msg: "blob exceeds the address space".into(),
    })?;
    let mut blob = vec![0u8; blob_len];
    let items = work_items(&entries);
    let batches: Vec<Vec<f32>> = entries
        .iter()
        .map(|e| match e.kind {
            TensorKind::Matmul => report::report_batch(&e.name, e.geom.k as usize),
            _ => Vec::new(),
        })
        .collect();
    let threads = opts.threads.max(1);
    let job = Job { src, entries: &entries, items: &items, batches: &batches };
    let (stats, yrefs) = run_items(&job, threads, &mut blob)?;
    for e in &entries {
        e.desc().check(blob.len())?;
    }
    let (mut reports, y_refs) = combine(&entries, &items, &stats, yrefs);
    let outs = output_errors(&entries, &blob, &batches, &y_refs, threads)?;
    for (rep, o) in reports.iter_mut().zip(outs) {
        rep.out = o;
    }
    let report = Report { target: opts.target.name, scheme: opts.scheme, tensors: reports };
    Ok(Packed { target: opts.target, scheme: opts.scheme, tensors: entries, blob, report })
}

/// Row chunks of ~1 Mi elements, in whole N tiles, entry by entry.
fn work_items(entries: &[TensorEntry]) -> Vec<Item> {
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
    items
}

/// Reads, encodes and measures one item.
fn work(job: &Job<'_>, idx: usize) -> Result<ChunkOut, PackError> {
    let it = job.items[idx];
    let e = &job.entries[it.entry];
    let (k, rows) = (e.geom.k as usize, (it.r1 - it.r0) as usize);
    let mut raw = vec![0f32; rows * k];
    job.src
        .read_rows(e.source, it.r0 as u64, rows as u64, &mut raw)
        .map_err(|msg| PackError::Source { tensor: e.name.clone(), msg })?;
    let yref = match e.kind {
        TensorKind::Matmul => report::reference_outputs(&raw, k, &job.batches[it.entry]),
        _ => Vec::new(),
    };
    let mut stats = WeightStats::default();
    let encoded = quant::encode_rows(raw, rows, e.layout.elem(), &e.geom, e.rotation, |v, d| {
        stats.note(v, d)
    });
    Ok(ChunkOut { item: idx, encoded, stats, yref })
}

/// Runs every item on `threads` workers and scatters the results into `blob`. Returns each
/// item's statistics and reference outputs, by item index; on failure the error of the
/// lowest failing item.
fn run_items(
    job: &Job<'_>,
    threads: usize,
    blob: &mut [u8],
) -> Result<(Vec<WeightStats>, Vec<Vec<f64>>), PackError> {
    let n = job.items.len();
    let mut stats = vec![WeightStats::default(); n];
    let mut yrefs: Vec<Vec<f64>> = vec![Vec::new(); n];
    let next = AtomicUsize::new(0);
    let mut first_err: Option<(usize, PackError)> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Result<ChunkOut, (usize, PackError)>>(2 * threads);
        for _ in 0..threads {
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
                    scatter::scatter(&job.entries[it.entry], (it.r0, it.r1), &out.encoded, blob);
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

/// Per entry: the report with weight statistics combined in item order, and the reference
/// outputs reassembled as `[n][REPORT_BATCH]` (matmul entries only).
fn combine(
    entries: &[TensorEntry],
    items: &[Item],
    stats: &[WeightStats],
    yrefs: Vec<Vec<f64>>,
) -> (Vec<TensorReport>, Vec<Vec<f64>>) {
    let mut reports: Vec<TensorReport> = entries
        .iter()
        .map(|e| {
            let bytes = e.shards.iter().map(|s| s.data.len).sum::<u64>() + e.scales.len;
            TensorReport::new(&e.desc(), bytes)
        })
        .collect();
    let mut y_refs: Vec<Vec<f64>> = entries
        .iter()
        .map(|e| match e.kind {
            TensorKind::Matmul => vec![0.0; e.geom.n as usize * REPORT_BATCH],
            _ => Vec::new(),
        })
        .collect();
    for ((it, st), yr) in items.iter().zip(stats).zip(yrefs) {
        reports[it.entry].add(st);
        let dst = &mut y_refs[it.entry];
        if !dst.is_empty() {
            let at = it.r0 as usize * REPORT_BATCH;
            dst[at..at + yr.len()].copy_from_slice(&yr);
        }
    }
    (reports, y_refs)
}

/// Output error of every matmul entry (in parallel, one entry per task, results stored by
/// index so the order is fixed).
fn output_errors(
    entries: &[TensorEntry],
    blob: &[u8],
    batches: &[Vec<f32>],
    y_refs: &[Vec<f64>],
    threads: usize,
) -> Result<Vec<Option<(f64, f64)>>, PackError> {
    type Slot = Mutex<Option<Result<Option<(f64, f64)>, npu_runtime::Error>>>;
    let next = AtomicUsize::new(0);
    let results: Vec<Slot> = entries.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(e) = entries.get(i) else { break };
                let r = match e.kind {
                    TensorKind::Matmul => {
                        report::output_error(&e.desc(), blob, &batches[i], &y_refs[i]).map(Some)
                    }
                    _ => Ok(None),
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
