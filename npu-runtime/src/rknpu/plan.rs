//! The NPU memory plan of a packed model, computed the same way at build time (the generated
//! `NPU_BUFFERS` const) and at session start (the backend's allocations). No allocation, no
//! std: a fixed walk over the descriptor table.
//!
//! Buffers, each one librknnrt allocation (one dma-buf file descriptor on a board):
//! - **B**: one per shard of every matmul tensor (K segment × core), filled from the blob once.
//! - **A**: one per (IOMMU domain, pipeline, K segment length, M bucket), shared by every
//!   context of that shape in the domain (contexts run one tensor at a time).
//! - **C**: one per (domain, pipeline, core, shard N length, M bucket).
//!
//! Domains: matmul tensors are taken in table order and placed in the current IOMMU domain
//! until the next one would push its total past the budget ([`crate::target::Target::max_buffer`]);
//! a tensor counts its B bytes plus its own A and C buffers (an upper bound: shared A/C
//! buffers are counted once per tensor), so the real total per domain is never above it.

use crate::backend::MAX_BATCH;
use crate::format::{Pipeline, Shard, TensorDesc, TensorKind};

/// M buckets: one context per bucket; a call with `m` rows runs in chunks of the smallest
/// bucket that holds them (rows beyond `m` are zero).
pub const M_BUCKETS: [u32; 2] = [1, MAX_BATCH as u32];

/// Most IOMMU domains the vendor driver offers (domain ids 0..16, as rk-llama.cpp uses them).
pub const MAX_DOMAINS: u32 = 16;

/// Smallest bucket that holds `m` rows (the largest one for more).
pub fn bucket_for(m: usize) -> u32 {
    let m = m as u64;
    M_BUCKETS.iter().copied().find(|&b| b as u64 >= m).unwrap_or(M_BUCKETS[M_BUCKETS.len() - 1])
}

/// Bytes of one row of A for a K length.
pub const fn a_row_bytes(p: Pipeline, k: u32) -> u64 {
    k as u64 * p.elem().bits() as u64 / 8
}

/// Bytes of one C element.
pub const fn c_elem_bytes(p: Pipeline) -> u64 {
    p.acc_bits() as u64 / 8
}

/// Why a model has no memory plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// One tensor alone needs more than a domain holds.
    TensorTooLarge {
        /// Index in the table.
        tensor: usize,
        /// Bytes it needs.
        bytes: u64,
        /// Budget per domain.
        budget: u64,
    },
    /// More domains than the driver offers.
    TooManyDomains {
        /// Domains needed.
        need: u32,
    },
}

#[cfg(feature = "std")]
impl std::error::Error for PlanError {}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            PlanError::TensorTooLarge { tensor, bytes, budget } => write!(
                f,
                "tensor #{tensor} needs {bytes} bytes of NPU memory, more than one IOMMU domain holds ({budget})"
            ),
            PlanError::TooManyDomains { need } => {
                write!(f, "the model needs {need} IOMMU domains, the driver offers {MAX_DOMAINS}")
            }
        }
    }
}

fn matmul(t: &TensorDesc<'_>) -> Option<Pipeline> {
    match (t.kind, t.pipeline) {
        (TensorKind::Matmul, Some(p)) => Some(p),
        _ => None,
    }
}

/// NPU bytes a tensor counts against its domain (B shards + its A and C buffers, all buckets).
pub fn tensor_bytes(t: &TensorDesc<'_>) -> u64 {
    let Some(p) = matmul(t) else { return 0 };
    let mut total = 0u64;
    for sh in t.shards {
        total += sh.data.len;
        for b in M_BUCKETS {
            total += b as u64 * sh.n_len as u64 * c_elem_bytes(p);
            if sh.core == t.shards[0].core {
                total += b as u64 * a_row_bytes(p, sh.k_len);
            }
        }
    }
    total
}

/// Calls `f(index, domain)` for every matmul tensor in table order; returns the number of
/// domains used.
pub fn for_each_domain(
    tensors: &[TensorDesc<'_>],
    budget: u64,
    mut f: impl FnMut(usize, u32),
) -> Result<u32, PlanError> {
    let (mut dom, mut used, mut any) = (0u32, 0u64, false);
    for (i, t) in tensors.iter().enumerate() {
        if matmul(t).is_none() {
            continue;
        }
        let bytes = tensor_bytes(t);
        if bytes > budget {
            return Err(PlanError::TensorTooLarge { tensor: i, bytes, budget });
        }
        if used + bytes > budget {
            dom += 1;
            used = 0;
        }
        if dom >= MAX_DOMAINS {
            return Err(PlanError::TooManyDomains { need: dom + 1 });
        }
        used += bytes;
        any = true;
        f(i, dom);
    }
    Ok(if any { dom + 1 } else { 0 })
}

/// The domain of matmul tensor `idx` (None for other kinds or a failed plan).
pub fn domain_of(tensors: &[TensorDesc<'_>], budget: u64, idx: usize) -> Option<u32> {
    let mut out = None;
    for_each_domain(tensors, budget, |i, d| {
        if i == idx {
            out = Some(d)
        }
    })
    .ok()?;
    out
}

/// Totals of a plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Domains used.
    pub domains: u32,
    /// B buffers (shards).
    pub b_buffers: u64,
    /// Distinct A buffers.
    pub a_buffers: u64,
    /// Distinct C buffers.
    pub c_buffers: u64,
    /// Bytes of B.
    pub b_bytes: u64,
    /// Bytes of the distinct A and C buffers.
    pub ac_bytes: u64,
    /// Matmul contexts (shards × buckets).
    pub contexts: u64,
}

impl Totals {
    /// Buffers (dma-buf file descriptors) the plan allocates.
    pub const fn buffers(&self) -> u64 {
        self.b_buffers + self.a_buffers + self.c_buffers
    }
}

/// Computes the plan's totals; `per_domain(domain, core, bytes)` receives every buffer's
/// bytes (A buffers are reported with core `u32::MAX`: the cores share them).
///
/// Domains hold contiguous runs of the table, so "an earlier tensor in the same domain" is a
/// scan of `tensors[domain_start..i]`.
pub fn totals(
    tensors: &[TensorDesc<'_>],
    budget: u64,
    mut per_domain: impl FnMut(u32, u32, u64),
) -> Result<Totals, PlanError> {
    let mut tot = Totals::default();
    let (mut cur_dom, mut dom_start) = (0u32, 0usize);
    tot.domains = for_each_domain(tensors, budget, |i, d| {
        if d != cur_dom {
            (cur_dom, dom_start) = (d, i);
        }
        let t = &tensors[i];
        let Some(p) = matmul(t) else { return };
        let earlier = &tensors[dom_start..i];
        for (si, sh) in t.shards.iter().enumerate() {
            tot.b_buffers += 1;
            tot.b_bytes += sh.data.len;
            tot.contexts += M_BUCKETS.len() as u64;
            per_domain(d, sh.core, sh.data.len);
            let before = &t.shards[..si];
            let a_key = |o: &TensorDesc<'_>, s: &Shard| matmul(o) == Some(p) && s.k_len == sh.k_len;
            let a_new = !earlier.iter().any(|o| o.shards.iter().any(|s| a_key(o, s)))
                && !before.iter().any(|s| a_key(t, s));
            let c_key = |o: &TensorDesc<'_>, s: &Shard| {
                matmul(o) == Some(p) && s.core == sh.core && s.n_len == sh.n_len
            };
            let c_new = !earlier.iter().any(|o| o.shards.iter().any(|s| c_key(o, s)))
                && !before.iter().any(|s| c_key(t, s));
            for b in M_BUCKETS {
                if a_new {
                    let bytes = b as u64 * a_row_bytes(p, sh.k_len);
                    tot.a_buffers += 1;
                    tot.ac_bytes += bytes;
                    per_domain(d, u32::MAX, bytes);
                }
                if c_new {
                    let bytes = b as u64 * sh.n_len as u64 * c_elem_bytes(p);
                    tot.c_buffers += 1;
                    tot.ac_bytes += bytes;
                    per_domain(d, sh.core, bytes);
                }
            }
        }
    })?;
    Ok(tot)
}

/// Buffers (file descriptors) the plan needs; 0 when there is no plan.
pub fn buffer_count(tensors: &[TensorDesc<'_>], budget: u64) -> u64 {
    totals(tensors, budget, |_, _, _| {}).map_or(0, |t| t.buffers())
}
