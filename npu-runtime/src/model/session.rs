//! A [`Session`]: one conversation's state (KV cache, position, token history) in a
//! caller-provided arena, over a [`Model`] and a [`Backend`].

use super::arena::{ArenaPlan, Bufs};
use super::config::{ModelConfig, MAX_BATCH};
use super::error::ModelError;
use super::forward;
use super::weights::{check_scratch, Model, Resolved, Slot};
use crate::backend::Backend;
use crate::error::Error;

/// One running context of a model: KV cache, position and token history in the caller's
/// arena, with the backend that runs its matmuls.
///
/// ```ignore
/// static mut ARENA: [u8; arena_bytes(&CONFIG, CONFIG.context_len)] = [0; _];
/// let mut s = Session::new(MODEL, CpuReference, unsafe { &mut *addr_of_mut!(ARENA) })?;
/// let logits = s.prefill(&prompt_ids)?;
/// ```
pub struct Session<'a, 's, B: Backend> {
    /// The model (config + weights).
    model: Model<'a>,
    /// Runs every matmul.
    backend: B,
    /// Descriptor indices resolved once.
    res: Resolved,
    /// Arena regions.
    bufs: Bufs<'s>,
    /// Positions filled in the KV cache (= tokens evaluated so far).
    pos: usize,
}

impl<'a, 's, B: Backend> Session<'a, 's, B> {
    /// Creates a session: checks the config, resolves and checks every tensor the
    /// architecture needs (kind, shape, descriptor against the blob), checks the backend's
    /// scratch needs, and carves the arena (at least [`arena_bytes`](super::arena_bytes) bytes, any
    /// alignment).
    pub fn new(model: Model<'a>, backend: B, arena: &'s mut [u8]) -> Result<Self, ModelError> {
        let c = model.config;
        if let Some(why) = c.invalid() {
            return Err(ModelError::BadConfig(why));
        }
        let res = Resolved::new(&model)?;
        let plan = ArenaPlan::new(&c, c.context_len);
        let need = plan.bytes();
        if arena.len() < need {
            return Err(ModelError::ArenaTooSmall { need, got: arena.len() });
        }
        for l in 0..c.n_layers as usize {
            for s in [Slot::Q, Slot::K, Slot::V, Slot::O, Slot::Gate, Slot::Up, Slot::Down] {
                check_scratch(&model, &backend, res.layers[l][s as usize], plan.scratch)?;
            }
        }
        check_scratch(&model, &backend, res.output, plan.scratch)?;
        let bufs = Bufs::carve(&c, &plan, arena)?;
        Ok(Session { model, backend, res, bufs, pos: 0 })
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    /// Tokens evaluated so far (= the next token's position).
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The tokens evaluated so far, in order.
    pub fn history(&self) -> &[u32] {
        self.bufs.tokens.get(..self.pos).unwrap_or(&[])
    }

    /// Forgets the conversation (the cache is overwritten as positions are reused).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Rewinds to position `pos` (≤ the current one), keeping the cache before it: lets a
    /// caller reuse a shared prompt prefix. Returns the position kept: `pos`, or 0 when a
    /// local (sliding-window) layer's ring no longer holds the window the next token attends
    /// to (a rewind of more than [`MAX_BATCH`] positions after the ring wrapped); the caller
    /// then evaluates the prefix again.
    pub fn truncate(&mut self, pos: usize) -> usize {
        let c = &self.model.config;
        let pos = self.pos.min(pos);
        let ring = (0..c.n_layers as usize)
            .find(|&l| c.is_local(l))
            .map(|l| c.cache_rows(l, c.context_len))
            .filter(|&rows| rows < c.context_len as usize);
        self.pos = match ring {
            // The ring holds positions `self.pos − rows ..`; the next token at `pos` needs
            // `pos − swa_window + 1 ..`.
            Some(rows) if self.pos > rows && self.pos - pos > rows + 1 - c.swa_window as usize => 0,
            _ => pos,
        };
        self.pos
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Evaluates `tokens` at the next positions (prefill in chunks of up to
    /// [`MAX_BATCH`] rows per matmul) and returns the logits `[vocab]` after the last one.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<&mut [f32], ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        self.check_tokens(tokens)?;
        let mut rest = tokens;
        while !rest.is_empty() {
            let n = rest.len().min(MAX_BATCH);
            let (chunk, tail) = rest.split_at(n);
            self.forward(chunk)?;
            if tail.is_empty() {
                forward::head(&self.model, &self.res, &mut self.backend, &mut self.bufs, n - 1)?;
            }
            rest = tail;
        }
        Ok(self.bufs.logits_mut())
    }

    /// Evaluates one token; returns the logits for the next position.
    pub fn step(&mut self, token: u32) -> Result<&mut [f32], ModelError> {
        self.prefill(&[token])
    }

    /// Evaluates `tokens` and hands the logits after **every** token to `each(i, logits)`
    /// (for perplexity / KL measurements). Same numbers as [`Session::prefill`] for the last.
    pub fn eval_all(
        &mut self,
        tokens: &[u32],
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        self.check_tokens(tokens)?;
        for (ci, chunk) in tokens.chunks(MAX_BATCH).enumerate() {
            self.forward(chunk)?;
            for r in 0..chunk.len() {
                forward::head(&self.model, &self.res, &mut self.backend, &mut self.bufs, r)?;
                each(ci * MAX_BATCH + r, self.bufs.logits_mut());
            }
        }
        Ok(())
    }

    /// [`Session::eval_all`] with the output head run once per chunk of up to [`MAX_BATCH`]
    /// rows instead of once per token (far fewer passes over the output matrix, the largest
    /// one), into `rows`, a caller buffer of at least `MAX_BATCH · vocab` values. The same
    /// numbers as [`Session::eval_all`], bit for bit.
    pub fn eval_all_batched(
        &mut self,
        tokens: &[u32],
        rows: &mut [f32],
        mut each: impl FnMut(usize, &[f32]),
    ) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::NoTokens);
        }
        let v = self.model.config.vocab as usize;
        if rows.len() < MAX_BATCH * v {
            return Err(ModelError::Runtime(Error::Length {
                what: "logits rows",
                need: MAX_BATCH * v,
                got: rows.len(),
            }));
        }
        self.check_tokens(tokens)?;
        for (ci, chunk) in tokens.chunks(MAX_BATCH).enumerate() {
            self.forward(chunk)?;
            let (m, w, be, s) = (&self.model, &self.res, &mut self.backend, &mut self.bufs);
            forward::head_rows(m, w, be, s, chunk.len(), rows)?;
            for (r, l) in rows.chunks_exact(v).take(chunk.len()).enumerate() {
                each(ci * MAX_BATCH + r, l);
            }
        }
        // The last row's logits are also the session's current logits, as after `prefill`.
        let last = (tokens.len() - 1) % MAX_BATCH;
        if let Some(src) = rows.get(last * v..(last + 1) * v) {
            self.bufs.logits_mut().copy_from_slice(src);
        }
        Ok(())
    }

    /// The logits of the last evaluation, and the candidate scratch the sampler sorts in.
    pub fn logits_and_scratch(&mut self) -> (&mut [f32], &mut [u32]) {
        self.bufs.logits_and_cand()
    }

    /// Samples the next token from the last logits with `sampler` (penalties see the token
    /// history). The logits are modified in place (penalties, temperature).
    pub fn sample(&mut self, sampler: &mut crate::sampler::Sampler) -> Result<u32, ModelError> {
        let (logits, cand, hist) = self.bufs.sample_parts(self.pos);
        sampler.sample(logits, cand, hist).map_err(ModelError::Sampling)
    }

    /// Runs the blocks over one chunk of up to [`MAX_BATCH`] checked tokens at the next
    /// positions, recording them in the history.
    fn forward(&mut self, chunk: &[u32]) -> Result<(), ModelError> {
        let (m, w, be, s) = (&self.model, &self.res, &mut self.backend, &mut self.bufs);
        forward::chunk(m, w, be, s, self.pos, chunk)?;
        if let Some(h) = self.bufs.tokens.get_mut(self.pos..self.pos + chunk.len()) {
            h.copy_from_slice(chunk);
        }
        self.pos += chunk.len();
        Ok(())
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<(), ModelError> {
        let c = &self.model.config;
        if self.pos.saturating_add(tokens.len()) > c.context_len as usize {
            return Err(ModelError::ContextFull { context_len: c.context_len });
        }
        match tokens.iter().find(|&&t| t >= c.vocab) {
            Some(&id) => Err(ModelError::BadToken { id, vocab: c.vocab }),
            None => Ok(()),
        }
    }
}
