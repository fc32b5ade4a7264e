//! A deterministic pseudo-random stream: the report's activation batch, and the matrices of
//! tests and benchmarks. No libm, no platform dependence.

/// A deterministic pseudo-random f32 stream: approximately standard normal (Irwin–Hall sum of
/// 4 uniforms, rescaled), from splitmix64.
pub struct SeededRng(u64);

impl SeededRng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }
    /// Next 64 random bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        npu_runtime::exec::rotate::splitmix64(self.0)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Approximately N(0, 1): mean 0, variance 1 (sum of 4 uniforms has variance 4/12).
    pub fn normal(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 1.732_050_8
    }
}
