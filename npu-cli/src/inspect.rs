//! `npu inspect FILE [--json]`: what a GGUF file holds.

use crate::CmdResult;
use npu_build::gguf::{rope_style_name, GgmlType, Gguf, HParams, TokenizerSummary, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `npu inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The GGUF file.
    file: PathBuf,
    /// Print machine-readable JSON (keys sorted, tensors and metadata in file order).
    #[arg(long)]
    json: bool,
}

/// Longest string value shown in the text listing; JSON shows every string in full.
const TEXT_PREVIEW: usize = 72;

pub fn run(args: Args) -> CmdResult {
    let g = Gguf::open(&args.file)?;
    // A file of an unsupported architecture is still worth inspecting: show why the
    // hyperparameters are missing instead of failing.
    let hp = g.hparams().map_err(|e| e.to_string());
    let tok = g.tokenizer().map_err(|e| e.to_string());
    let out = if args.json { json_report(&g, &hp, &tok) } else { text_report(&g, &hp, &tok) };
    write_stdout(out.as_bytes())
}

/// Write everything to stdout; a closed pipe (`npu inspect f | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write output: {e}").into())
        }
        _ => Ok(()),
    }
}

/// Per type: (tensor count, bytes, elements), sorted by type id.
fn totals_by_type(g: &Gguf<'_>) -> BTreeMap<GgmlType, (u64, u64, u64)> {
    let mut by: BTreeMap<GgmlType, (u64, u64, u64)> = BTreeMap::new();
    for t in g.tensors() {
        let e = by.entry(t.ty()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes();
        e.2 += t.n_elements();
    }
    by
}

fn shape(dims: &[u64]) -> String {
    let parts: Vec<String> = dims.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A value in one line of text: scalars in full, strings cut at [`TEXT_PREVIEW`] characters,
/// arrays as element type and length.
fn preview(v: &Value<'_>) -> String {
    match v {
        Value::String(s) => {
            let mut cut: String = s.chars().take(TEXT_PREVIEW).collect();
            if cut.len() < s.len() {
                cut.push('…');
            }
            format!("{cut:?}")
        }
        Value::Array(a) => format!("[{}; {}]", a.elem_type(), a.len()),
        Value::U8(x) => x.to_string(),
        Value::I8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::F32(x) => x.to_string(),
        Value::F64(x) => x.to_string(),
        Value::Bool(x) => x.to_string(),
    }
}

fn text_report(
    g: &Gguf<'_>,
    hp: &Result<HParams, String>,
    tok: &Result<TokenizerSummary<'_>, String>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "file: {} ({} bytes, GGUF v{}, alignment {}, data at byte {})",
        g.name(),
        g.file_len(),
        g.version(),
        g.alignment(),
        g.data_start()
    );
    let arch = g.architecture().map(str::to_owned).unwrap_or_else(|e| format!("? ({e})"));
    let _ = writeln!(s, "architecture: {arch}");

    let _ = writeln!(s, "\nhyperparameters:");
    match hp {
        Ok(h) => {
            for (k, v) in hparam_rows(h) {
                let _ = writeln!(s, "  {k:<22} {v}");
            }
        }
        Err(e) => {
            let _ = writeln!(s, "  unavailable: {e}");
        }
    }

    let _ = writeln!(s, "\ntokenizer:");
    match tok {
        Ok(t) => {
            for (k, v) in tokenizer_rows(t) {
                let _ = writeln!(s, "  {k:<22} {v}");
            }
        }
        Err(e) => {
            let _ = writeln!(s, "  unavailable: {e}");
        }
    }

    let _ = writeln!(s, "\nmetadata ({} keys):", g.metadata_len());
    let kw = g.metadata().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in g.metadata() {
        let _ = writeln!(s, "  {k:<kw$}  {:<7}  {}", v.value_type().name(), preview(&v));
    }

    let _ = writeln!(s, "\ntensors ({}):", g.tensors().len());
    let nw = g.tensors().iter().map(|t| t.name().len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        s,
        "  {:<nw$}  {:<7}  {:<22}  {:>12}  {:>12}",
        "name", "type", "shape", "bytes", "offset"
    );
    for t in g.tensors() {
        let _ = writeln!(
            s,
            "  {:<nw$}  {:<7}  {:<22}  {:>12}  {:>12}",
            t.name(),
            t.ty().name(),
            shape(t.dims()),
            t.n_bytes(),
            t.file_offset()
        );
    }

    let _ = writeln!(s, "\ntotals:");
    let (mut n, mut bytes, mut elems) = (0u64, 0u64, 0u64);
    for (ty, (c, b, e)) in totals_by_type(g) {
        let _ = writeln!(s, "  {:<7} {c:>5} tensors  {b:>14} bytes  {e:>14} elements", ty.name());
        n += c;
        bytes += b;
        elems += e;
    }
    let _ = writeln!(s, "  {:<7} {n:>5} tensors  {bytes:>14} bytes  {elems:>14} elements", "all");
    s
}

fn hparam_rows(h: &HParams) -> Vec<(&'static str, String)> {
    vec![
        ("architecture", h.architecture.clone()),
        ("context_length", h.context_length.to_string()),
        ("embedding_length", h.embedding_length.to_string()),
        ("block_count", h.block_count.to_string()),
        ("feed_forward_length", h.feed_forward_length.to_string()),
        ("head_count", h.head_count.to_string()),
        ("head_count_kv", h.head_count_kv.to_string()),
        ("head_dim", h.head_dim.to_string()),
        ("rms_norm_eps", h.rms_norm_eps.to_string()),
        ("rope_freq_base", h.rope_freq_base.to_string()),
        ("rope_dimension_count", h.rope_dimension_count.to_string()),
        ("rope_style", rope_style_name(h.rope_style).to_owned()),
        ("vocab_size", h.vocab_size.to_string()),
        ("qkv_bias", h.qkv_bias.to_string()),
        ("tied_output", h.tied_output.to_string()),
        ("qk_norm", h.qk_norm.to_string()),
        ("post_norms", h.post_norms.to_string()),
        ("query_scale_dim", h.query_scale_dim.to_string()),
        ("sliding_window", h.sliding_window.to_string()),
        ("local_layers", local_layers(h)),
        ("rope_freq_base_swa", h.rope_freq_base_swa.to_string()),
        ("attn_logit_softcap", h.attn_logit_softcapping.to_string()),
        ("final_logit_softcap", h.final_logit_softcapping.to_string()),
    ]
}

/// The local (sliding-window) layers: `-`, or how many of how many and which are global.
fn local_layers(h: &HParams) -> String {
    if h.swa_layers == 0 {
        return "-".to_owned();
    }
    let n = h.block_count.min(128) as usize;
    let global: Vec<String> =
        (0..n).filter(|&l| (h.swa_layers >> l) & 1 == 0).map(|l| l.to_string()).collect();
    format!(
        "{} of {n} (global: {})",
        n - global.len(),
        if global.is_empty() { "-".to_owned() } else { global.join(", ") }
    )
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn tokenizer_rows(t: &TokenizerSummary<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("model", opt(t.model)),
        ("pre", opt(t.pre)),
        ("tokens", opt(t.n_tokens)),
        ("merges", opt(t.n_merges)),
        ("bos_id", opt(t.bos_id)),
        ("eos_id", opt(t.eos_id)),
        ("add_bos", opt(t.add_bos)),
        ("chat_template", t.has_chat_template.to_string()),
    ]
}

/// An f32 as JSON by its shortest decimal form (1e-5, not 9.999999747378752e-6); NaN and
/// infinities become null.
fn f32_json(x: f32) -> Json {
    x.to_string().parse::<f64>().map_or(Json::Null, Json::from)
}

fn value_json(v: &Value<'_>) -> Json {
    match *v {
        Value::String(s) => json!(s),
        // Arrays can hold a whole vocabulary: report their shape, not their contents.
        Value::Array(a) => json!({ "elem_type": a.elem_type().name(), "len": a.len() }),
        Value::F32(x) => f32_json(x),
        Value::F64(x) => json!(x),
        Value::Bool(x) => json!(x),
        _ => match (v.as_u64(), v.as_i64()) {
            (Some(u), _) => json!(u),
            (None, Some(i)) => json!(i),
            _ => Json::Null,
        },
    }
}

/// The hyperparameters as JSON, or the reason they could not be read.
fn hparams_json(hp: &Result<HParams, String>) -> Json {
    match hp {
        Ok(h) => json!({
            "architecture": h.architecture,
            "context_length": h.context_length,
            "embedding_length": h.embedding_length,
            "block_count": h.block_count,
            "feed_forward_length": h.feed_forward_length,
            "head_count": h.head_count,
            "head_count_kv": h.head_count_kv,
            "head_dim": h.head_dim,
            "rms_norm_eps": f32_json(h.rms_norm_eps),
            "rope_freq_base": f32_json(h.rope_freq_base),
            "rope_dimension_count": h.rope_dimension_count,
            "rope_style": rope_style_name(h.rope_style),
            "vocab_size": h.vocab_size,
            "qkv_bias": h.qkv_bias,
            "tied_output": h.tied_output,
            "qk_norm": h.qk_norm,
            "post_norms": h.post_norms,
            "query_scale_dim": h.query_scale_dim,
            "sliding_window": h.sliding_window,
            "local_layers": (0..h.block_count.min(128)).filter(|&l| (h.swa_layers >> l) & 1 == 1).collect::<Vec<u32>>(),
            "rope_freq_base_swa": f32_json(h.rope_freq_base_swa),
            "attn_logit_softcapping": f32_json(h.attn_logit_softcapping),
            "final_logit_softcapping": f32_json(h.final_logit_softcapping),
        }),
        Err(e) => json!({ "error": e }),
    }
}

/// The tokenizer summary as JSON, or the reason it could not be read.
fn tokenizer_json(tok: &Result<TokenizerSummary<'_>, String>) -> Json {
    match tok {
        Ok(t) => json!({
            "model": t.model,
            "pre": t.pre,
            "tokens": t.n_tokens,
            "merges": t.n_merges,
            "bos_id": t.bos_id,
            "eos_id": t.eos_id,
            "add_bos": t.add_bos,
            "chat_template": t.has_chat_template,
        }),
        Err(e) => json!({ "error": e }),
    }
}

fn json_report(
    g: &Gguf<'_>,
    hp: &Result<HParams, String>,
    tok: &Result<TokenizerSummary<'_>, String>,
) -> String {
    let (hparams, tokenizer) = (hparams_json(hp), tokenizer_json(tok));
    let metadata: Vec<Json> = g
        .metadata()
        .map(|(k, v)| json!({ "key": k, "type": v.value_type().name(), "value": value_json(&v) }))
        .collect();
    let tensors: Vec<Json> = g
        .tensors()
        .iter()
        .map(|t| {
            json!({
                "name": t.name(),
                "type": t.ty().name(),
                "shape": t.dims(),
                "elements": t.n_elements(),
                "bytes": t.n_bytes(),
                "offset": t.file_offset(),
            })
        })
        .collect();
    let mut by_type = Map::new();
    let (mut bytes, mut elems) = (0u64, 0u64);
    for (ty, (c, b, e)) in totals_by_type(g) {
        by_type.insert(ty.name().to_owned(), json!({ "tensors": c, "bytes": b, "elements": e }));
        bytes += b;
        elems += e;
    }
    let report = json!({
        "file": g.name(),
        "file_bytes": g.file_len(),
        "version": g.version(),
        "alignment": g.alignment(),
        "data_start": g.data_start(),
        "architecture": g.architecture().ok(),
        "hparams": hparams,
        "tokenizer": tokenizer,
        "metadata": metadata,
        "tensors": tensors,
        "totals": { "tensors": g.tensors().len(), "bytes": bytes, "elements": elems, "by_type": by_type },
    });
    // serde_json's Map is a BTreeMap here (no preserve_order feature): keys print sorted.
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}
