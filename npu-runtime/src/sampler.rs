//! Choosing the next token from logits: greedy, or llama.cpp's sampler chain
//! `penalties → top-k → top-p → min-p → temperature → draw`, seeded and deterministic.
//!
//! Semantics follow llama.cpp's samplers (`llama-sampling.cpp`):
//! - **repetition penalty** over the last `penalty_last_n` tokens: a logit `l` of a token that
//!   occurred becomes `l / p` if `l > 0`, else `l · p`; then `− count · frequency_penalty −
//!   presence_penalty`;
//! - **top-k** keeps the k largest logits (`k = 0`: all);
//! - **top-p** keeps the smallest prefix of the sorted candidates whose probability mass
//!   (softmax of the current logits) reaches `p`;
//! - **min-p** keeps candidates with probability ≥ `min_p ·` the top probability;
//! - **temperature** divides the logits; `temperature ≤ 0` means greedy (argmax, lowest id
//!   on ties);
//! - **draw**: softmax, then the first candidate whose cumulative probability exceeds a
//!   uniform number from the seeded generator.
//!
//! Candidates are sorted by (logit descending, id ascending): a total order, so the result
//! does not depend on the sort algorithm. No allocation: the session's arena provides the
//! candidate list (`model::Session::logits_and_scratch`). The generator is
//! splitmix64 (Steele, Lea, Flood 2014), written here so runs repeat on every host.

/// Sampling parameters (defaults: llama.cpp's `common_params_sampling`, penalties off).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `≤ 0` selects greedy decoding.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = all).
    pub top_k: u32,
    /// Nucleus mass to keep (1.0 = off).
    pub top_p: f32,
    /// Keep tokens at least this fraction as likely as the best one (0 = off).
    pub min_p: f32,
    /// Repetition penalty (1.0 = off).
    pub repeat_penalty: f32,
    /// Subtracted once per occurrence in the window (0 = off).
    pub frequency_penalty: f32,
    /// Subtracted once if the token occurs in the window (0 = off).
    pub presence_penalty: f32,
    /// Window of recent tokens the penalties look at.
    pub penalty_last_n: u32,
    /// PRNG seed.
    pub seed: u64,
}

impl SamplerConfig {
    /// Greedy decoding (argmax).
    pub const GREEDY: SamplerConfig = SamplerConfig {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        frequency_penalty: 0.0,
        presence_penalty: 0.0,
        penalty_last_n: 64,
        seed: 0,
    };
    /// llama.cpp's default chain: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05.
    pub const DEFAULT: SamplerConfig = SamplerConfig {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.0,
        frequency_penalty: 0.0,
        presence_penalty: 0.0,
        penalty_last_n: 64,
        seed: 0x5eed,
    };
}

impl SamplerConfig {
    /// Checks the settings a caller may have taken from outside (a command line, a config
    /// file): every float finite, `repeat_penalty > 0`. [`Sampler::sample`] refuses a config
    /// that fails this; callers can check it up front for an early error.
    pub fn check(&self) -> Result<(), SampleError> {
        let fields = [
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("min_p", self.min_p),
            ("repeat_penalty", self.repeat_penalty),
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ];
        for (setting, v) in fields {
            if !v.is_finite() {
                return Err(SampleError::BadSetting { setting, value_bits: v.to_bits() });
            }
        }
        if self.repeat_penalty <= 0.0 {
            let value_bits = self.repeat_penalty.to_bits();
            return Err(SampleError::BadSetting { setting: "repeat_penalty", value_bits });
        }
        Ok(())
    }
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig::DEFAULT
    }
}

/// A sampler: its parameters and the generator state.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Parameters.
    pub config: SamplerConfig,
    /// splitmix64 state.
    state: u64,
}

/// Why sampling failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleError {
    /// No logits, or the candidate scratch is shorter than the logits.
    Empty,
    /// Every logit is NaN or −∞ after filtering.
    NoCandidate,
    /// A setting is not a finite number, or `repeat_penalty` is not positive
    /// ([`SamplerConfig::check`]).
    BadSetting {
        /// The field of [`SamplerConfig`].
        setting: &'static str,
        /// Its value, as `f32` bits (so this type stays `Eq`).
        value_bits: u32,
    },
}

impl core::fmt::Display for SampleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SampleError::Empty => f.write_str("sampler: no logits or too little candidate scratch"),
            SampleError::NoCandidate => f.write_str("sampler: no finite logit to choose from"),
            SampleError::BadSetting { setting, value_bits } => {
                let v = f32::from_bits(*value_bits);
                if *setting == "repeat_penalty" && v.is_finite() {
                    write!(f, "sampler: repeat_penalty {v} must be a positive number")
                } else {
                    write!(f, "sampler: {setting} {v} is not a finite number")
                }
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SampleError {}

/// Index of the largest finite logit (lowest index on ties), if any.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_nan() || l == f32::NEG_INFINITY {
            continue;
        }
        if best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

fn by_logit(logits: &[f32]) -> impl Fn(&u32, &u32) -> core::cmp::Ordering + '_ {
    move |&a, &b| {
        let la = logits.get(a as usize).copied().unwrap_or(f32::NEG_INFINITY);
        let lb = logits.get(b as usize).copied().unwrap_or(f32::NEG_INFINITY);
        lb.total_cmp(&la).then(a.cmp(&b))
    }
}

impl Sampler {
    /// A sampler with `config`, its generator seeded from `config.seed`.
    pub fn new(config: SamplerConfig) -> Sampler {
        Sampler { config, state: config.seed }
    }

    /// Next 64 random bits (splitmix64).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (exact in f32).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Picks the next token. `logits` (`[vocab]`) are modified in place (penalties,
    /// temperature); `cand` is scratch of at least `logits.len()` entries; `history` holds the
    /// tokens so far (the penalty window is its tail).
    pub fn sample(
        &mut self,
        logits: &mut [f32],
        cand: &mut [u32],
        history: &[u32],
    ) -> Result<u32, SampleError> {
        let c = self.config;
        c.check()?;
        if logits.is_empty() || cand.len() < logits.len() {
            return Err(SampleError::Empty);
        }
        penalize(&c, logits, history);
        if c.temperature <= 0.0 {
            return argmax(logits).ok_or(SampleError::NoCandidate);
        }
        let n = top_k(logits, cand, c.top_k)?;
        let top = logits[cand[0] as usize];
        if top == f32::INFINITY {
            // Infinitely likely: the first +∞ (lowest id) wins; the softmax below would be NaN.
            return Ok(cand[0]);
        }
        let n = top_p_min_p(&c, logits, &cand[..n], top);
        let t = c.temperature;
        let total: f64 =
            cand[..n].iter().map(|&i| libm::exp(((logits[i as usize] - top) / t) as f64)).sum();
        let r = self.uniform() as f64 * total;
        let mut cum = 0f64;
        for &i in &cand[..n] {
            cum += libm::exp(((logits[i as usize] - top) / t) as f64);
            if r < cum {
                return Ok(i);
            }
        }
        Ok(cand[n - 1])
    }
}

/// Repetition, frequency and presence penalties over the tail of `history`, llama.cpp's way:
/// each distinct token once, with its count in the window.
fn penalize(c: &SamplerConfig, logits: &mut [f32], history: &[u32]) {
    if c.repeat_penalty == 1.0 && c.frequency_penalty == 0.0 && c.presence_penalty == 0.0 {
        return;
    }
    let window = &history[history.len().saturating_sub(c.penalty_last_n as usize)..];
    for (i, &t) in window.iter().enumerate() {
        if window[..i].contains(&t) {
            continue;
        }
        let count = window[i..].iter().filter(|&&u| u == t).count() as f32;
        if let Some(l) = logits.get_mut(t as usize) {
            *l = if *l <= 0.0 { *l * c.repeat_penalty } else { *l / c.repeat_penalty };
            *l -= count * c.frequency_penalty + c.presence_penalty;
        }
    }
}

/// Every finite logit's id into `cand`, the best `top_k` (0 = all) of them first and sorted;
/// how many are kept.
fn top_k(logits: &[f32], cand: &mut [u32], top_k: u32) -> Result<usize, SampleError> {
    let mut n = 0;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && l != f32::NEG_INFINITY {
            cand[n] = i as u32;
            n += 1;
        }
    }
    if n == 0 {
        return Err(SampleError::NoCandidate);
    }
    let cmp = by_logit(logits);
    let k = if top_k == 0 { n } else { (top_k as usize).min(n) };
    if k < n {
        cand[..n].select_nth_unstable_by(k - 1, &cmp);
    }
    cand[..k].sort_unstable_by(&cmp);
    Ok(k)
}

/// How many of the sorted candidates top-p (softmax mass, max-subtracted, f64 sums) and
/// min-p (relative to the best, `top`) keep; at least one.
fn top_p_min_p(c: &SamplerConfig, logits: &[f32], cand: &[u32], top: f32) -> usize {
    let mut n = cand.len();
    if c.top_p < 1.0 {
        let total: f64 = cand.iter().map(|&i| libm::exp((logits[i as usize] - top) as f64)).sum();
        let mut cum = 0f64;
        for (j, &i) in cand.iter().enumerate() {
            cum += libm::exp((logits[i as usize] - top) as f64) / total;
            if cum >= c.top_p as f64 {
                n = j + 1;
                break;
            }
        }
    }
    if c.min_p > 0.0 {
        // p_i ≥ min_p · p_max  ⇔  l_i ≥ l_max + ln(min_p).
        let floor = top + libm::logf(c.min_p);
        let keep = cand[..n].iter().take_while(|&&i| logits[i as usize] >= floor).count();
        n = keep.max(1);
    }
    n
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn greedy_takes_argmax_and_lowest_on_ties() {
        let mut s = Sampler::new(SamplerConfig::GREEDY);
        let mut cand = [0u32; 4];
        assert_eq!(s.sample(&mut [0.1, 2.0, 2.0, -1.0], &mut cand, &[]), Ok(1));
        assert_eq!(s.sample(&mut [f32::NAN, f32::NEG_INFINITY, -5.0, -6.0], &mut cand, &[]), Ok(2));
        assert_eq!(s.sample(&mut [f32::NAN; 4], &mut cand, &[]), Err(SampleError::NoCandidate));
    }

    #[test]
    fn repetition_penalty_follows_llama_cpp() {
        // Token 0 (positive logit) is divided, token 2 (negative) multiplied: 3/2 < 2.0 so
        // token 1 wins greedily; without the penalty token 0 would.
        let cfg = SamplerConfig { repeat_penalty: 2.0, ..SamplerConfig::GREEDY };
        let mut s = Sampler::new(cfg);
        let mut l = [3.0, 2.0, -1.0];
        assert_eq!(s.sample(&mut l, &mut [0; 3], &[0, 2, 0]), Ok(1));
        assert_eq!(l, [1.5, 2.0, -2.0]);
    }

    #[test]
    fn filters_restrict_the_draw() {
        // top-k 1 → always the best, whatever the seed.
        for seed in 0..20 {
            let mut s = Sampler::new(SamplerConfig { top_k: 1, seed, ..SamplerConfig::DEFAULT });
            assert_eq!(s.sample(&mut [0.0, 1.0, 0.9, 0.5], &mut [0; 4], &[]), Ok(1));
        }
        // min-p 0.5: tokens with p < p_max/2 (logit < max − ln 2) never drawn.
        let mut seen = [0u32; 4];
        let mut s = Sampler::new(SamplerConfig {
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            temperature: 1.0,
            ..SamplerConfig::DEFAULT
        });
        for _ in 0..400 {
            let t = s.sample(&mut [0.0, 1.0, 0.9, -3.0], &mut [0; 4], &[]).unwrap();
            seen[t as usize] += 1;
        }
        assert_eq!((seen[0], seen[3]), (0, 0));
        assert!(seen[1] > 0 && seen[2] > 0);
        // top-p 0.5 with probabilities ≈ (0.64, 0.24, 0.09, …): only the first survives.
        let mut s = Sampler::new(SamplerConfig {
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            temperature: 1.0,
            ..SamplerConfig::DEFAULT
        });
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [1.0, 2.0, 3.0, 0.0], &mut [0; 4], &[]), Ok(2));
        }
    }

    #[test]
    fn settings_that_are_not_numbers_are_errors() {
        let mut cand = [0u32; 3];
        for (name, cfg) in [
            ("temperature", SamplerConfig { temperature: f32::NAN, ..SamplerConfig::DEFAULT }),
            ("top_p", SamplerConfig { top_p: f32::INFINITY, ..SamplerConfig::DEFAULT }),
            ("min_p", SamplerConfig { min_p: -f32::INFINITY, ..SamplerConfig::DEFAULT }),
            ("repeat_penalty", SamplerConfig { repeat_penalty: 0.0, ..SamplerConfig::DEFAULT }),
            (
                "presence_penalty",
                SamplerConfig { presence_penalty: f32::NAN, ..SamplerConfig::GREEDY },
            ),
        ] {
            let e = Sampler::new(cfg).sample(&mut [0.0, 1.0, 2.0], &mut cand, &[]).unwrap_err();
            assert!(
                matches!(e, SampleError::BadSetting { setting, .. } if setting == name),
                "{e:?}"
            );
            assert_eq!(cfg.check(), Err(e));
        }
        assert_eq!(SamplerConfig::DEFAULT.check(), Ok(()));
        let e = SamplerConfig { temperature: f32::NAN, ..SamplerConfig::DEFAULT }.check();
        assert_eq!(e.unwrap_err().to_string(), "sampler: temperature NaN is not a finite number");
    }

    #[test]
    fn infinite_logits_win_without_nan() {
        let mut s = Sampler::new(SamplerConfig { top_k: 0, ..SamplerConfig::DEFAULT });
        let mut l = [0.0, f32::INFINITY, f32::NAN, f32::INFINITY];
        assert_eq!(s.sample(&mut l, &mut [0; 4], &[]), Ok(1));
    }

    #[test]
    fn same_seed_same_tokens() {
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                seed,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                temperature: 1.0,
                ..SamplerConfig::DEFAULT
            });
            let mut out = [0u32; 32];
            for o in out.iter_mut() {
                *o = s.sample(&mut [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], &mut [0; 6], &[]).unwrap();
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
