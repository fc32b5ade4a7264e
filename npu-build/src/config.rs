//! The runtime's [`ModelConfig`] from a GGUF's metadata: one mapping, used by the build script
//! (`npu_build::compile()`) and by the `npu` CLI, so a model baked in by `#[npu_model]` and the
//! same model packed in memory by `npu run` get the same hyperparameters and stop tokens.

use crate::gguf::Gguf;
use crate::tokenizer::OwnedTokenizerTables;
use npu_runtime::model::{Arch, ModelConfig, ARCHS};

/// The config for `g`, with stop tokens from its tokenizer tables `tok` and a KV cache sized
/// for `context` tokens (`None`: the model's trained context length). The message names what
/// is missing or unsupported.
pub fn model_config(
    g: &Gguf<'_>,
    tok: &OwnedTokenizerTables,
    context: Option<u32>,
) -> Result<ModelConfig, String> {
    let hp = g.hparams().map_err(|e| e.to_string())?;
    let arch = Arch::from_name(&hp.architecture).ok_or_else(|| {
        let names: Vec<&str> = ARCHS.iter().map(|a| a.name).collect();
        format!(
            "unsupported architecture `{}`: npu-runtime runs {}",
            hp.architecture,
            names.join(", ")
        )
    })?;
    let eos = tok
        .eos
        .ok_or("the model declares no end-of-sequence token (tokenizer.ggml.eos_token_id)")?;
    let mut config = ModelConfig::new(
        arch,
        hp.block_count,
        hp.embedding_length,
        hp.head_count,
        hp.head_count_kv,
        hp.head_dim,
        hp.feed_forward_length,
        hp.vocab_size,
        hp.rope_freq_base,
        hp.rms_norm_eps,
        hp.tied_output,
        context.unwrap_or(hp.context_length),
        eos,
    );
    config.rope_dim = hp.rope_dimension_count;
    config.rope_style = hp.rope_style;
    config.qkv_bias = hp.qkv_bias;
    config.swa_window = hp.sliding_window;
    config.swa_layers = hp.swa_layers;
    config.rope_base_local = hp.rope_freq_base_swa;
    config.query_scale_dim = hp.query_scale_dim;
    config.attn_softcap = hp.attn_logit_softcapping;
    config.final_softcap = hp.final_logit_softcapping;
    // The tokenizer tables already resolved end-of-turn the way llama.cpp does (metadata id,
    // else the first known end-of-turn marker in the vocabulary).
    config.eot = tok.eot.filter(|&e| e != eos);
    if let Some(why) = config.invalid() {
        return Err(format!("the model's hyperparameters are not supported by npu-runtime: {why}"));
    }
    Ok(config)
}
