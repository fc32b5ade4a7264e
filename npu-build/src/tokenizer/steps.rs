//! The steps of [`OwnedTokenizerTables::build`](super::OwnedTokenizerTables::build), in order:
//! attributes, text ids, marker fix-ups, specials, stored bytes and the sorted lookup, byte
//! tokens, merges.

use super::{attr, gpt2_decode, TokenizerBuildError, TokenizerKind, TokenizerSource};
use npu_runtime::tokenizer::{BpeMerge, NO_TOKEN};
use std::collections::HashMap;

/// Per token, its attribute bits from `tokenizer.ggml.token_type` (normal when absent).
pub(super) fn token_attrs(src: &TokenizerSource) -> Vec<u8> {
    src.tokens
        .iter()
        .enumerate()
        .map(|(i, _)| match src.token_types.get(i).copied().unwrap_or(1) {
            1 => attr::NORMAL,
            2 => attr::UNKNOWN,
            3 => attr::CONTROL,
            4 => attr::USER_DEFINED,
            5 => attr::UNUSED,
            6 => attr::BYTE,
            _ => 0,
        })
        .collect()
}

/// Text → id, the last id winning for duplicated texts as in llama.cpp's map.
pub(super) fn text_ids(src: &TokenizerSource) -> HashMap<&str, u32> {
    let mut by_text: HashMap<&str, u32> = HashMap::with_capacity(src.tokens.len());
    for (i, t) in src.tokens.iter().enumerate() {
        by_text.insert(t.as_str(), i as u32);
    }
    by_text
}

/// Token texts llama.cpp recognises as end-of-turn, end-of-message and fill-in-the-middle
/// markers and forces to control tokens; first list: end of turn, second: end of message.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_TEXTS: &[&[&str]] = &[
    &[
        "<|fim_prefix|>",
        "<fim-prefix>",
        "<fim_prefix>",
        "<｜fim▁begin｜>",
        "<PRE>",
        "▁<PRE>",
        "<|code_prefix|>",
        "<|prefix|>",
    ],
    &[
        "<|fim_suffix|>",
        "<fim-suffix>",
        "<fim_suffix>",
        "<｜fim▁hole｜>",
        "<SUF>",
        "▁<SUF>",
        "<|code_suffix|>",
        "<|suffix|>",
    ],
    &[
        "<|fim_middle|>",
        "<fim-middle>",
        "<fim_middle>",
        "<｜fim▁end｜>",
        "<MID>",
        "▁<MID>",
        "<|code_middle|>",
        "<|middle|>",
    ],
    &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
    &["<|file_sep|>"],
];

/// Marker ids: end of turn, end of message, and the six fill-in-the-middle roles in
/// [`FIM_TEXTS`] order (prefix, suffix, middle, pad, repository, file separator).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Markers {
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub fim: [Option<u32>; 6],
}

/// llama.cpp's fix-ups by token text: a marker the metadata leaves unset takes the first
/// token found among its known texts, which becomes a control token.
pub(super) fn mark_markers(attrs: &mut [u8], by_text: &HashMap<&str, u32>, m: &mut Markers) {
    let mut force_control = |texts: &[&str], slot: &mut Option<u32>| {
        if slot.is_none() {
            if let Some(&id) = texts.iter().find_map(|t| by_text.get(t)) {
                *slot = Some(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
    };
    force_control(EOT_TEXTS, &mut m.eot);
    force_control(EOM_TEXTS, &mut m.eom);
    for (texts, slot) in FIM_TEXTS.iter().zip(&mut m.fim) {
        force_control(texts, slot);
    }
}

/// Token texts llama.cpp counts as end of generation (and forces to control tokens).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// gpt-oss tokens llama.cpp always renders (made user-defined).
const ALWAYS_RENDERED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// llama.cpp's end-of-generation set, in its order of steps: the FIM pad, repository and
/// separator tokens; tokens with [`EOG_TEXTS`] (made control); EOS, EOT and EOM; then
/// `<|end|>` leaves the set (as a user-defined token) when `<|return|>` and `<|call|>`, or
/// `<|calls|>` and `<|flush|>`, are in it, and `</s>` (as a normal token) when
/// `<|tool_response>` or `<|plamo:eos|>` is. Also makes the [`ALWAYS_RENDERED`] tokens
/// user-defined. Ascending ids.
pub(super) fn eog_ids(
    attrs: &mut [u8],
    by_text: &HashMap<&str, u32>,
    eos: Option<u32>,
    m: &Markers,
) -> Vec<u32> {
    let mut eog: Vec<u32> = m.fim[3..].iter().flatten().copied().collect();
    for t in EOG_TEXTS {
        if let Some(&id) = by_text.get(t) {
            eog.push(id);
            attrs[id as usize] |= attr::CONTROL;
        }
    }
    for t in ALWAYS_RENDERED {
        if let Some(&id) = by_text.get(t) {
            attrs[id as usize] = attr::USER_DEFINED;
        }
    }
    eog.extend([eos, m.eot, m.eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();
    let in_set = |eog: &[u32], t: &str| by_text.get(t).filter(|id| eog.contains(id)).copied();
    let has = |eog: &[u32], t: &str| in_set(eog, t).is_some();
    let drop_end = (has(&eog, "<|return|>") && has(&eog, "<|call|>"))
        || (has(&eog, "<|calls|>") && has(&eog, "<|flush|>"));
    if let (true, Some(id)) = (drop_end, in_set(&eog, "<|end|>")) {
        eog.retain(|&e| e != id);
        attrs[id as usize] = attr::USER_DEFINED;
    }
    let normal_s = has(&eog, "<|tool_response>") || has(&eog, "<|plamo:eos|>");
    if let (true, Some(id)) = (normal_s, in_set(&eog, "</s>")) {
        eog.retain(|&e| e != id);
        attrs[id as usize] = attr::NORMAL;
    }
    eog
}

/// Specials: control, user-defined and unknown tokens with non-empty text, sorted by bytes
/// (of tokens with the same text, the lowest id: llama.cpp would match it first); marks the
/// Phi-3 ones that strip whitespace after them.
pub(super) fn specials(
    src: &TokenizerSource,
    attrs: &mut [u8],
    by_text: &HashMap<&str, u32>,
) -> Vec<u32> {
    let n = src.tokens.len();
    let is_special = |i: usize| {
        attrs[i] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            && !src.tokens[i].is_empty()
    };
    let mut specials: Vec<u32> = (0..n as u32).filter(|&i| is_special(i as usize)).collect();
    specials.sort_by(|&a, &b| src.tokens[a as usize].cmp(&src.tokens[b as usize]).then(a.cmp(&b)));
    specials.dedup_by(|b, a| src.tokens[*a as usize] == src.tokens[*b as usize]);
    // Phi-3: every special strips the whitespace after it, except <unk>, <s>, <|endoftext|>.
    let name = src.model_name.as_deref().unwrap_or("").to_lowercase();
    if name.contains("phi-3") || name.contains("phi3") {
        for a in attrs.iter_mut() {
            if *a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                *a |= attr::RSTRIP;
            }
        }
        if let Some(&id) = by_text.get("</s>") {
            attrs[id as usize] |= attr::RSTRIP;
        }
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            if let Some(&id) = by_text.get(t) {
                attrs[id as usize] &= !attr::RSTRIP;
            }
        }
    }
    specials
}

/// The bytes of token `id` in the concatenated store.
fn tok_bytes<'a>((bytes, offsets): (&'a [u8], &[u32]), id: u32) -> &'a [u8] {
    &bytes[offsets[id as usize] as usize..offsets[id as usize + 1] as usize]
}

/// `(token_bytes, token_offsets, sorted_ids)`.
type StoredBytes = (Vec<u8>, Vec<u32>, Vec<u32>);

/// Each token's stored bytes (concatenated, with `n + 1` offsets) and the searchable ids
/// sorted by bytes.
pub(super) fn stored_bytes(
    src: &TokenizerSource,
    kind: TokenizerKind,
    attrs: &[u8],
    by_text: &HashMap<&str, u32>,
) -> Result<StoredBytes, TokenizerBuildError> {
    let n = src.tokens.len();
    let mut token_bytes = Vec::new();
    let mut token_offsets = Vec::with_capacity(n + 1);
    token_offsets.push(0u32);
    let mut lookup: Vec<u32> = Vec::new();
    for (i, text) in src.tokens.iter().enumerate() {
        let verbatim = attrs[i] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0;
        let (bytes, searchable) = match kind {
            TokenizerKind::Spm => (text.as_bytes().to_vec(), true),
            TokenizerKind::Bpe => match gpt2_decode(text) {
                // A special's text is matched and rendered verbatim; it is still found by
                // BPE when its decoded form is the same bytes.
                Some(raw) if verbatim => {
                    let same = raw == text.as_bytes();
                    (text.as_bytes().to_vec(), same)
                }
                Some(raw) => (raw, true),
                None => (text.as_bytes().to_vec(), false),
            },
        };
        // llama.cpp renames empty tokens so they cannot match anything.
        let searchable =
            searchable && !bytes.is_empty() && by_text.get(text.as_str()) == Some(&(i as u32));
        token_bytes.extend_from_slice(&bytes);
        token_offsets
            .push(u32::try_from(token_bytes.len()).map_err(|_| {
                TokenizerBuildError::Invalid("vocabulary larger than 4 GiB".into())
            })?);
        if searchable {
            lookup.push(i as u32);
        }
    }
    let tok = |id: u32| tok_bytes((&token_bytes, &token_offsets), id);
    lookup.sort_by(|&a, &b| tok(a).cmp(tok(b)).then(a.cmp(&b)));
    // Equal bytes from different texts (possible only for SPM-unreachable corner cases):
    // keep the highest id, like a map filled in id order.
    let mut sorted_ids: Vec<u32> = Vec::with_capacity(lookup.len());
    for id in lookup {
        match sorted_ids.last() {
            Some(&last) if tok(last) == tok(id) => *sorted_ids.last_mut().unwrap() = id,
            _ => sorted_ids.push(id),
        }
    }
    Ok((token_bytes, token_offsets, sorted_ids))
}

/// Per byte value, the token that stands for it alone (BPE: by bytes; SPM: `<0xHH>`, else
/// the single-character token), or `NO_TOKEN`.
pub(super) fn byte_tokens(
    kind: TokenizerKind,
    store: (&[u8], &[u32]),
    sorted_ids: &[u32],
    by_text: &HashMap<&str, u32>,
) -> Vec<u32> {
    let tok = |id: u32| tok_bytes(store, id);
    let find = |bytes: &[u8]| -> Option<u32> {
        sorted_ids.binary_search_by(|&id| tok(id).cmp(bytes)).ok().map(|k| sorted_ids[k])
    };
    let mut byte_tokens = vec![NO_TOKEN; 256];
    for b in 0..=255u8 {
        byte_tokens[b as usize] = match kind {
            TokenizerKind::Bpe => find(&[b]).unwrap_or(NO_TOKEN),
            TokenizerKind::Spm => by_text
                .get(format!("<0x{b:02X}>").as_str())
                .copied()
                .or_else(|| std::str::from_utf8(&[b]).ok().and_then(|s| by_text.get(s).copied()))
                .unwrap_or(NO_TOKEN),
        };
    }
    byte_tokens
}

/// BPE merges by token id, sorted by pair; a repeated pair keeps its first rank.
pub(super) fn bpe_merges(src: &TokenizerSource, by_text: &HashMap<&str, u32>) -> Vec<BpeMerge> {
    let mut merges = Vec::new();
    let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
    for (rank, m) in src.merges.iter().enumerate() {
        // Split at the first space after the first character, as llama.cpp does.
        let Some(pos) = m.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(p, _)| p) else {
            continue;
        };
        let (l, r) = (&m[..pos], &m[pos + 1..]);
        let (Some(&li), Some(&ri)) = (by_text.get(l), by_text.get(r)) else { continue };
        let merged = by_text.get(format!("{l}{r}").as_str()).copied().unwrap_or(NO_TOKEN);
        // A repeated pair keeps its first rank (llama.cpp's map emplace keeps the first).
        if seen.insert((li, ri), rank).is_none() {
            merges.push(BpeMerge { left: li, right: ri, rank: rank as u32, merged });
        }
    }
    merges.sort_by_key(|m| (m.left, m.right));
    merges
}
