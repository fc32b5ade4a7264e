//! The NPU memory plan of a packed model, checked at pack time: every matmul tensor in one
//! IOMMU domain of the target (the runtime's own placement, [`npu_runtime::rknpu::plan`]),
//! no tensor larger than a domain's budget (it would have to cross into the next one), no
//! more domains than the target offers. The generated code carries the result
//! (`TENSOR_DOMAINS`, `IOMMU_DOMAINS`), so it is known before the program runs.

use npu_runtime::format::TensorDesc;
use npu_runtime::rknpu::plan::{self, PlanError};
use npu_runtime::target::{Target, TargetId};

/// Domain of each tensor ([`NOT_NPU`] for tensors the NPU does not hold), and how many
/// domains are used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPlan {
    /// Per tensor, in table order.
    pub of_tensor: Vec<u8>,
    /// Domains used.
    pub domains: u32,
}

/// The domain entry of a tensor that is not in NPU memory (norms, embeddings, the `cpu`
/// target's tensors).
pub const NOT_NPU: u8 = u8::MAX;
const _: () = assert!(plan::MAX_DOMAINS < NOT_NPU as u32);

/// Plans `tensors` for `target`, or says which tensor or how many domains do not fit.
pub fn plan_domains(tensors: &[TensorDesc<'_>], target: &Target) -> Result<DomainPlan, String> {
    let mut of_tensor = vec![NOT_NPU; tensors.len()];
    if target.id == TargetId::Cpu {
        return Ok(DomainPlan { of_tensor, domains: 0 });
    }
    let budget = target.max_buffer;
    let used = plan::for_each_domain(tensors, budget, |i, d| of_tensor[i] = d as u8);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let too_many = |need: String| {
        format!(
            "the packed model needs {need} IOMMU domains of {budget} bytes ({:.2} GiB each: librknnrt binds NPU buffers with i32 offsets) on target `{}`, which offers {} ({} bytes in all); choose a smaller quant",
            gib(budget),
            target.name,
            target.iommu_domains,
            budget * target.iommu_domains as u64
        )
    };
    match used {
        Ok(n) if n <= target.iommu_domains => Ok(DomainPlan { of_tensor, domains: n }),
        Ok(n) => Err(too_many(n.to_string())),
        Err(PlanError::TooManyDomains { need }) => Err(too_many(format!("at least {need}"))),
        Err(PlanError::TensorTooLarge { tensor, bytes, budget }) => Err(format!(
            "tensor `{}` needs {bytes} bytes of NPU memory (weights plus its A and C buffers), more than the {budget} bytes ({:.2} GiB) of one IOMMU domain on target `{}`: it would cross into the next domain, and a tensor's buffers must share one; choose a smaller quant",
            tensors[tensor].name,
            gib(budget),
            target.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use npu_runtime::format::{
        ElemType, Geometry, Layout, Pipeline, Region, Scheme, Shard, TensorKind,
    };

    fn matmul(name: &'static str, shards: &'static [Shard]) -> TensorDesc<'static> {
        TensorDesc {
            name,
            kind: TensorKind::Matmul,
            scheme: Some(Scheme::Int8),
            pipeline: Some(Pipeline::I8I8I32),
            layout: Layout::RowMajor { elem: ElemType::I8 },
            geom: Geometry::plan(32, 32, 32, 32, 32, 1),
            rotation: None,
            shards,
            scales: Region { offset: 0, len: 0 },
        }
    }

    const fn shard(len: u64) -> Shard {
        Shard {
            k_seg: 0,
            core: 0,
            k0: 0,
            k_len: 32,
            n0: 0,
            n_len: 32,
            data: Region { offset: 0, len },
        }
    }

    static GIB: [Shard; 1] = [shard(1 << 30)];
    static HUGE: [Shard; 1] = [shard(3 << 30)];

    #[test]
    fn tensors_fill_domains_in_order_and_misfits_are_named() {
        let rk = Target::by_name("rk3588").unwrap();
        let ts = [matmul("a", &GIB), matmul("b", &GIB), matmul("c", &GIB)];
        let p = plan_domains(&ts, rk).unwrap();
        assert_eq!((p.of_tensor, p.domains), (vec![0, 1, 2], 3), "1 GiB + A/C: one per domain");
        let e = plan_domains(&[matmul("a", &GIB), matmul("blk.9.ffn_up", &HUGE)], rk).unwrap_err();
        assert!(
            e.starts_with("tensor `blk.9.ffn_up` needs 3221") && e.contains("2147483584 bytes"),
            "{e}"
        );
        let many: Vec<TensorDesc<'_>> = (0..17).map(|_| matmul("t", &GIB)).collect();
        let e = plan_domains(&many, rk).unwrap_err();
        assert!(e.contains("needs at least 17 IOMMU domains") && e.contains("offers 16"), "{e}");
        let cpu = Target::by_name("cpu").unwrap();
        assert_eq!(plan_domains(&ts, cpu).unwrap().of_tensor, vec![NOT_NPU; 3]);
    }
}
