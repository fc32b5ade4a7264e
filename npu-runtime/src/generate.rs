//! The generation loop and ChatML chat turns.
//!
//! [`generate`] prefills the prompt, then samples and evaluates one token at a time, handing
//! every generated id to a callback, until an end token (EOS / end of turn, per
//! [`crate::model::ModelConfig::is_stop`]), the token limit, the context limit, or the
//! callback says stop. The end token is not passed on and not evaluated, as in llama.cpp.
//! [`generate_until`] takes the end tokens from the caller instead, e.g. llama.cpp's whole
//! end-of-generation set, [`crate::tokenizer::TokenizerTables::is_eog`].
//!
//! Chat: SmolLM2 and Qwen2.5 use ChatML turns, `<|im_start|>{role}\n{content}<|im_end|>\n`,
//! and the reply is generated after `<|im_start|>assistant\n` until `<|im_end|>`.
//! [`chatml`] writes the text of a conversation into a caller buffer; the tokenizer must
//! then encode it with special tokens parsed, so `<|im_start|>` becomes its single id.

use crate::backend::Backend;
use crate::model::{ModelError, Session};
use crate::sampler::Sampler;

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced this end token (EOS or end of turn); it was not emitted.
    EndToken(u32),
    /// `max_tokens` were generated.
    MaxTokens,
    /// The KV cache is full.
    ContextFull,
    /// The callback returned `false`.
    Callback,
}

/// What [`generate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Tokens emitted to the callback.
    pub n_tokens: usize,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Runs `prompt` (at the session's current position, so a conversation can continue) and
/// generates up to `max_tokens` tokens with `sampler`, calling `on_token(id)` for each; the
/// callback returns `false` to stop early.
pub fn generate<B: Backend>(
    session: &mut Session<'_, '_, B>,
    sampler: &mut Sampler,
    prompt: &[u32],
    max_tokens: usize,
    on_token: impl FnMut(u32) -> bool,
) -> Result<Generated, ModelError> {
    let config = *session.config();
    generate_until(session, sampler, prompt, max_tokens, |id| config.is_stop(id), on_token)
}

/// [`generate`] with the end tokens given by `is_end` (which should accept the config's
/// [`is_stop`](crate::model::ModelConfig::is_stop) ids too).
pub fn generate_until<B: Backend>(
    session: &mut Session<'_, '_, B>,
    sampler: &mut Sampler,
    prompt: &[u32],
    max_tokens: usize,
    is_end: impl Fn(u32) -> bool,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Generated, ModelError> {
    session.prefill(prompt)?;
    let mut n = 0;
    loop {
        if n >= max_tokens {
            return Ok(Generated { n_tokens: n, stop: StopReason::MaxTokens });
        }
        let tok = session.sample(sampler)?;
        if is_end(tok) {
            return Ok(Generated { n_tokens: n, stop: StopReason::EndToken(tok) });
        }
        n += 1;
        if !on_token(tok) {
            return Ok(Generated { n_tokens: n, stop: StopReason::Callback });
        }
        if n >= max_tokens {
            return Ok(Generated { n_tokens: n, stop: StopReason::MaxTokens });
        }
        if session.pos() >= session.config().context_len as usize {
            return Ok(Generated { n_tokens: n, stop: StopReason::ContextFull });
        }
        session.step(tok)?;
    }
}

/// One chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `system`, `user` or `assistant`.
    pub role: &'a str,
    /// The text.
    pub content: &'a str,
}

/// ChatML turn opener.
pub const IM_START: &str = "<|im_start|>";
/// ChatML turn closer (the end-of-turn token of SmolLM2 and Qwen2.5).
pub const IM_END: &str = "<|im_end|>";

/// The output buffer of [`chatml`] is too small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the text needs.
    pub need: usize,
}

/// Writes `messages` as ChatML turns into `out`, then `<|im_start|>assistant\n` when
/// `add_assistant` (the generation prompt). Returns the bytes written. The same text as the
/// models' Jinja templates produce for these messages (without their default system prompt).
pub fn chatml(
    messages: &[Message<'_>],
    add_assistant: bool,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut parts_len = 0usize;
    let mut put = |s: &str, out: &mut [u8]| {
        if let Some(dst) = out.get_mut(parts_len..parts_len + s.len()) {
            dst.copy_from_slice(s.as_bytes());
        }
        parts_len += s.len();
    };
    for m in messages {
        for s in [IM_START, m.role, "\n", m.content, IM_END, "\n"] {
            put(s, out);
        }
    }
    if add_assistant {
        for s in [IM_START, "assistant", "\n"] {
            put(s, out);
        }
    }
    if parts_len > out.len() {
        return Err(BufferTooSmall { need: parts_len });
    }
    Ok(parts_len)
}

/// The text to feed after an assistant reply that stopped at its end-of-turn token (which
/// was not evaluated), to add the user's next message and open the next reply:
/// `<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n`.
pub fn chatml_next_turn(content: &str, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let n = IM_END.len() + 1;
    let m = chatml(&[Message { role: "user", content }], true, out.get_mut(n..).unwrap_or(&mut []))
        .map_err(|e| BufferTooSmall { need: e.need + n })?;
    let head = out.get_mut(..n).ok_or(BufferTooSmall { need: n + m })?;
    head[..IM_END.len()].copy_from_slice(IM_END.as_bytes());
    head[IM_END.len()] = b'\n';
    Ok(n + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_matches_the_reference_prompt() {
        // tests/data/prompt_chat.txt, as llama.cpp's template renders it.
        let want = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a short story about a robot who learns to paint.<|im_end|>\n<|im_start|>assistant\n";
        let msgs = [
            Message {
                role: "system",
                content: "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
            },
            Message {
                role: "user",
                content: "Write a short story about a robot who learns to paint.",
            },
        ];
        let mut buf = [0u8; 512];
        let n = chatml(&msgs, true, &mut buf).unwrap();
        assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), want);
        assert_eq!(chatml(&msgs, true, &mut [0u8; 10]), Err(BufferTooSmall { need: want.len() }));
        let n = chatml_next_turn("hi", &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b"<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
