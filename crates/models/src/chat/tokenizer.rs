//! A `tokenizers::Tokenizer` built from the metadata of a GGUF file (`tokenizer.ggml.*`), for the
//! byte-level BPE ("gpt2") tokenizers of llama-architecture models such as SmolLM2 and Llama 3.
//!
//! No prefix space is added (candle's own converter adds one, which shifts every first word to a
//! different token than the model was trained on).

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

/// The Llama 3 pre-tokenizer expression (llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What the GGUF says about its tokenizer beyond the vocabulary.
#[derive(Clone, Debug)]
pub struct TokenizerInfo {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    /// Control tokens (`token_type` 3), such as `<|im_start|>` and `<|im_end|>`.
    pub control_tokens: Vec<(u32, String)>,
}

fn strings(content: &Content, key: &str) -> Result<Vec<String>> {
    let values = content
        .metadata
        .get(key)
        .ok_or_else(|| Error::Invalid(format!("the GGUF has no {key}: it carries no tokenizer")))?
        .to_vec()?;
    values.iter().map(|v| Ok(v.to_string()?.clone())).collect()
}

fn number(content: &Content, key: &str) -> Option<u32> {
    match content.metadata.get(key)? {
        Value::U32(v) => Some(*v),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::U64(v) => u32::try_from(*v).ok(),
        Value::I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// A metadata string, when present.
pub fn metadata_string(content: &Content, key: &str) -> Option<String> {
    content.metadata.get(key)?.to_string().ok().cloned()
}

/// Builds the tokenizer and reads its special tokens.
pub fn from_gguf(content: &Content) -> Result<(Tokenizer, TokenizerInfo)> {
    let model = metadata_string(content, "tokenizer.ggml.model").unwrap_or_default();
    if model != "gpt2" {
        return Err(Error::Invalid(format!(
            "the GGUF's tokenizer is {model:?}; only byte-level BPE (\"gpt2\") tokenizers are supported, \
             as in SmolLM2, Llama 3 and Qwen-style models"
        )));
    }
    let tokens = strings(content, "tokenizer.ggml.tokens")?;
    let merges = strings(content, "tokenizer.ggml.merges")?;
    let token_types: Vec<i64> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()?
            .iter()
            .map(|t| match t {
                Value::I32(x) => i64::from(*x),
                Value::U32(x) => i64::from(*x),
                _ => 1,
            })
            .collect(),
        None => vec![1; tokens.len()],
    };

    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok((t.clone(), u32::try_from(i).map_err(|_| Error::Invalid("vocabulary too large".into()))?))
        })
        .collect::<Result<_>>()?;
    let merges: Vec<(String, String)> = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| Error::Invalid(format!("malformed merge {m:?} in the GGUF")))
        })
        .collect::<Result<_>>()?;
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build()?;
    let mut tokenizer = Tokenizer::new(bpe);

    let byte_level = ByteLevel::default().add_prefix_space(false).trim_offsets(false);
    let pre = metadata_string(content, "tokenizer.ggml.pre").unwrap_or_else(|| "default".into());
    let pre_tokenizer: PreTokenizerWrapper = match pre.as_str() {
        // llama.cpp: every digit on its own, then the GPT-2 expression.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Sequence::new(vec![Digits::new(true).into(), byte_level.use_regex(true).into()]).into()
        }
        "llama3" | "llama-bpe" | "llama-v3" | "dbrx" | "smaug-bpe" | "falcon3" | "pixtral" => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_SPLIT.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )?;
            Sequence::new(vec![split.into(), byte_level.use_regex(false).into()]).into()
        }
        other => {
            if !matches!(other, "default" | "gpt2" | "gpt-2") {
                tracing::warn!(pre = other, "unknown GGUF pre-tokenizer; using GPT-2's");
            }
            byte_level.use_regex(true).into()
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let mut control_tokens = Vec::new();
    let mut specials = Vec::new();
    let mut user_defined = Vec::new();
    for (i, (token, kind)) in tokens.iter().zip(token_types.iter().chain(std::iter::repeat(&1))).enumerate() {
        let id = u32::try_from(i).map_err(|_| Error::Invalid("vocabulary too large".into()))?;
        match kind {
            3 => {
                control_tokens.push((id, token.clone()));
                specials.push(AddedToken::from(token.clone(), true));
            }
            4 => user_defined.push(AddedToken::from(token.clone(), false)),
            _ => {}
        }
    }
    tokenizer.add_special_tokens(specials)?;
    tokenizer.add_tokens(user_defined)?;

    let info = TokenizerInfo {
        bos: number(content, "tokenizer.ggml.bos_token_id"),
        eos: number(content, "tokenizer.ggml.eos_token_id"),
        add_bos: matches!(content.metadata.get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(true))),
        control_tokens,
    };
    Ok((tokenizer, info))
}
