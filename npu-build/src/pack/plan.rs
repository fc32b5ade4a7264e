//! The plan: every tensor's kind, scheme, layout, geometry, rotation and blob offsets, decided
//! before any value is computed. A pure function of the tensor list and the options.

use super::{PackError, PackOptions, SourceTensor, TensorEntry};
use crate::quant;
use npu_runtime::exec::rotate;
use npu_runtime::format::{
    ElemType, Geometry, Layout, Pipeline, Region, Rotation, Scheme, Shard, TensorKind, BLOB_ALIGN,
};

/// `v` rounded up to the blob alignment.
fn align(v: u64) -> u64 {
    v.div_ceil(BLOB_ALIGN) * BLOB_ALIGN
}

fn to_u32(name: &str, what: &str, v: u64) -> Result<u32, PackError> {
    u32::try_from(v).map_err(|_| PackError::TooLarge {
        tensor: name.to_string(),
        msg: format!("{what} = {v} exceeds u32"),
    })
}

/// The blob's layout: every tensor's descriptor, and the blob's length.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Descriptors, in blob order (ascending offsets).
    pub entries: Vec<TensorEntry>,
    /// Length of the blob in bytes (a multiple of `BLOB_ALIGN`).
    pub blob_len: u64,
}

/// Plans every tensor.
pub fn plan(sources: &[SourceTensor], opts: &PackOptions) -> Result<Plan, PackError> {
    let tied = !sources.iter().any(|s| s.name == "output.weight");
    let emb_scheme = if opts.scheme == Scheme::Fp16 { Scheme::Fp16 } else { Scheme::Int8 };
    let head = quant::head_scheme(opts.scheme);
    let mut entries = Vec::new();
    let mut cursor = 0u64;
    for (i, s) in sources.iter().enumerate() {
        if s.dims.contains(&0) {
            let msg = format!("shape {:?} has a zero-length dimension", s.dims);
            return Err(PackError::Source { tensor: s.name.clone(), msg });
        }
        let k = to_u32(&s.name, "row length", s.row_len())?;
        let n = to_u32(&s.name, "rows", s.n_rows())?;
        let mut make = |name: &str, kind: TensorKind, scheme: Option<Scheme>| {
            entries.push(entry(opts, i, name, kind, scheme, k, n, &mut cursor)?);
            Ok::<(), PackError>(())
        };
        match (s.dims.len(), s.name.as_str()) {
            (2, "token_embd.weight") => {
                make(&s.name, TensorKind::Embedding, Some(emb_scheme))?;
                if tied {
                    make("output.weight", TensorKind::Matmul, Some(head))?;
                }
            }
            (2, "output.weight") => make(&s.name, TensorKind::Matmul, Some(head))?,
            (2, _) => make(&s.name, TensorKind::Matmul, None)?,
            _ => make(&s.name, TensorKind::F32, None)?,
        }
    }
    Ok(Plan { entries, blob_len: align(cursor) })
}

/// How one tensor is stored.
type Form = (Layout, Geometry, Option<Pipeline>, Option<Rotation>);

/// Layout, geometry, pipeline and rotation of a `k × n` tensor of `kind` (`scheme`: its own
/// scheme, `None` for the model's).
fn form(
    opts: &PackOptions,
    name: &str,
    kind: TensorKind,
    scheme: Option<Scheme>,
    k: u32,
    n: u32,
) -> Result<Form, PackError> {
    Ok(match kind {
        TensorKind::Matmul => {
            let sch = scheme.unwrap_or(opts.scheme);
            let spec = opts.target.scheme_spec(sch)?;
            let geom = opts.target.geometry(spec, k, n);
            let rot = sch.hadamard().then(|| rotate::rotation_for(name, geom.k_pad));
            (spec.layout, geom, Some(spec.pipeline), rot)
        }
        TensorKind::Embedding => {
            let elem = if scheme == Some(Scheme::Fp16) { ElemType::F16 } else { ElemType::I8 };
            (Layout::RowMajor { elem }, Geometry::plan(k, n, 1, 1, k.max(1), 1), None, None)
        }
        TensorKind::F32 => (
            Layout::RowMajor { elem: ElemType::F32 },
            Geometry::plan(k, n, 1, 1, k.max(1), 1),
            None,
            None,
        ),
    })
}

/// Plans one tensor at `cursor`, advancing it past its shards and scale grid.
#[allow(clippy::too_many_arguments)]
fn entry(
    opts: &PackOptions,
    source: usize,
    name: &str,
    kind: TensorKind,
    scheme: Option<Scheme>,
    k: u32,
    n: u32,
    cursor: &mut u64,
) -> Result<TensorEntry, PackError> {
    let (layout, geom, pipeline, rotation) = form(opts, name, kind, scheme, k, n)?;
    let shards = place_shards(opts, name, layout, &geom, cursor)?;
    let scales = if matches!(layout.elem(), ElemType::I8 | ElemType::I4) {
        *cursor = align(*cursor);
        let r = Region { offset: *cursor, len: geom.k_segs as u64 * geom.n_pad as u64 * 4 };
        *cursor += r.len;
        r
    } else {
        Region::EMPTY
    };
    Ok(TensorEntry {
        name: name.to_string(),
        source,
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
    })
}

/// One shard per (K segment, core) with rows, K-segment-major, each 64-byte aligned.
fn place_shards(
    opts: &PackOptions,
    name: &str,
    layout: Layout,
    geom: &Geometry,
    cursor: &mut u64,
) -> Result<Vec<Shard>, PackError> {
    let target = opts.target;
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
            *cursor = align(*cursor);
            let data = Region { offset: *cursor, len };
            shards.push(Shard { k_seg: seg, core, k0, k_len, n0, n_len, data });
            *cursor += len;
        }
    }
    Ok(shards)
}
