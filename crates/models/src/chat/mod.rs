//! The local chat model: a llama-architecture GGUF (SmolLM2-135M-Instruct by default) run on the CPU
//! with candle's quantized llama.
//!
//! - **Tokenizer** built from the GGUF's own metadata (no tokenizer.json needed), see [`tokenizer`].
//! - **Chat template** rendered in Rust (ChatML, or Llama 3's headers), chosen from the template string
//!   stored in the GGUF.
//! - **Q4_1 weights are re-quantised to Q8_0 at load**: candle has no SIMD kernel for Q4_1, so Q8_0 is
//!   several times faster for a little more memory.
//! - **Prompt caching**: [`ChatModel::prefill`] runs a prompt (the system prompt of a conversation) once and
//!   keeps its attention state; generations that start with the same prompt continue from a copy of it
//!   (copies share the cached tensors, which are reference-counted), so only the new turns are computed.
//! - **One generation at a time**: a generation already uses every core, so [`ChatModel::generate`] and
//!   [`ChatModel::prefill`] wait for each other on an internal lock (a queue); call them from a blocking
//!   thread (e.g. `tokio::task::spawn_blocking`), never directly on an async executor.

pub mod tokenizer;

use std::io::{Cursor, Read, Seek};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use tokenizers::Tokenizer;

use crate::fetch::{CHAT_MODEL_FILE, default_models_dir};
use crate::{Error, Result};

pub use tokenizer::TokenizerInfo;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message { role: Role::System, content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message { role: Role::User, content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message { role: Role::Assistant, content: content.into() }
    }
}

/// How prompts are laid out for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen, many others).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` (Llama 3).
    Llama3,
}

/// Sampling settings of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationParams {
    /// 0 picks the most likely token every time (greedy, deterministic).
    pub temperature: f64,
    /// Nucleus sampling: keep the most likely tokens whose probabilities add up to this.
    pub top_p: Option<f64>,
    /// Above 1 discourages repeating recent tokens.
    pub repeat_penalty: f32,
    /// How many recent tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    /// The most tokens to generate.
    pub max_tokens: usize,
    /// Same seed, same prompt, same settings: same reply. `None` draws one from the clock.
    pub seed: Option<u64>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            temperature: 0.7,
            top_p: Some(0.9),
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            max_tokens: 256,
            seed: None,
        }
    }
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (`<|im_end|>`, or its end-of-sequence token).
    EndOfTurn,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The callback asked to stop.
    Cancelled,
    /// The model's context window is full.
    ContextFull,
}

/// What a generation produced and what it cost.
#[derive(Clone, Debug)]
pub struct Generation {
    /// The whole reply (the concatenation of the deltas passed to the callback).
    pub text: String,
    pub stop: StopReason,
    /// Tokens of the whole prompt, and how many of them came from a [`PromptCache`].
    pub prompt_tokens: usize,
    pub cached_prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the start of the call (after waiting for the queue) to the first sampled token.
    pub time_to_first_token: Duration,
    /// Time spent waiting for another generation to finish.
    pub queued: Duration,
    pub elapsed: Duration,
}

/// The attention state of a prompt, computed once by [`ChatModel::prefill`] and reused by every
/// generation whose prompt starts with the same tokens. Cheap to clone.
#[derive(Clone)]
pub struct PromptCache {
    weights: ModelWeights,
    tokens: Vec<u32>,
}

impl PromptCache {
    /// How many tokens the cached prompt holds.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl std::fmt::Debug for PromptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCache").field("tokens", &self.tokens.len()).finish()
    }
}

/// A loaded chat model. Share it (`Arc<ChatModel>`); generations run one at a time.
pub struct ChatModel {
    base: ModelWeights,
    tokenizer: Tokenizer,
    info: TokenizerInfo,
    format: ChatFormat,
    default_system: Option<String>,
    template: Option<String>,
    stop_tokens: Vec<u32>,
    context_length: usize,
    name: String,
    requantized: usize,
    device: Device,
    queue: Mutex<()>,
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

/// The chat model to load: `ONDA_LOCAL_MODEL` (absolute, or relative to the models folder), else the
/// default SmolLM2 file in the models folder.
pub fn default_chat_model_path() -> PathBuf {
    let models_dir = default_models_dir();
    match std::env::var_os("ONDA_LOCAL_MODEL").filter(|m| !m.is_empty()) {
        Some(model) => {
            let model = PathBuf::from(model);
            if model.is_absolute() || model.is_file() { model } else { models_dir.join(model) }
        }
        None => models_dir.join(CHAT_MODEL_FILE),
    }
}

fn gguf_error(path: &Path, err: &candle_core::Error) -> Error {
    Error::Invalid(format!("{} is not a readable GGUF model: {err}", path.display()))
}

/// Re-quantises the tensors that candle has no fast kernel for (Q4_1) to Q8_0, into a new in-memory
/// GGUF (model metadata only; the tokenizer was read already). `None` when nothing needs it.
fn requantize<R: Read + Seek>(content: &Content, reader: &mut R) -> Result<Option<(Vec<u8>, usize)>> {
    let slow = |t: GgmlDType| matches!(t, GgmlDType::Q4_1);
    if !content.tensor_infos.values().any(|t| slow(t.ggml_dtype)) {
        return Ok(None);
    }
    let cpu = Device::Cpu;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| content.tensor_infos.get(*n).map(|t| t.offset));
    let mut tensors = Vec::with_capacity(names.len());
    let mut changed = 0;
    for name in names {
        let tensor = content.tensor(reader, name, &cpu)?;
        let tensor = if slow(tensor.dtype()) {
            changed += 1;
            QTensor::quantize(&tensor.dequantize(&cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("tokenizer."))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &tensor_refs)?;
    Ok(Some((out.into_inner(), changed)))
}

/// The default system prompt a ChatML template inserts when a conversation has none (SmolLM2's
/// "You are a helpful AI assistant named SmolLM, ..."), read from the template string.
fn template_default_system(template: &str) -> Option<String> {
    // The newline inside the template's string literal is either a real one or an escaped `\n`.
    ["<|im_start|>system\n", "<|im_start|>system\\n"].iter().find_map(|marker| {
        let start = template.find(marker)? + marker.len();
        let end = template[start..].find("<|im_end|>")? + start;
        let text = &template[start..end];
        (!text.contains('{') && !text.contains('\'') && !text.contains('+'))
            .then(|| text.replace("\\n", "\n"))
    })
}

impl ChatModel {
    /// Loads a llama-architecture GGUF with a byte-level BPE tokenizer in its metadata.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::MissingModel { path: path.to_path_buf() });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut reader = Cursor::new(bytes.as_slice());
        let content = Content::read(&mut reader).map_err(|e| gguf_error(path, &e))?;
        let architecture = tokenizer::metadata_string(&content, "general.architecture").unwrap_or_default();
        if architecture != "llama" {
            return Err(Error::Invalid(format!(
                "{} is a {architecture:?} model; only llama-architecture GGUF models are supported",
                path.display()
            )));
        }
        let (tokenizer, info) = tokenizer::from_gguf(&content)?;
        let template = tokenizer::metadata_string(&content, "tokenizer.chat_template");
        let name = tokenizer::metadata_string(&content, "general.name")
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default());
        let trained_context = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(MAX_SEQ_LEN, |c| c as usize);
        let context_length = trained_context.min(MAX_SEQ_LEN);

        let token = |s: &str| tokenizer.token_to_id(s);
        let format = match template.as_deref() {
            Some(t) if t.contains("<|start_header_id|>") => ChatFormat::Llama3,
            Some(t) if t.contains("<|im_start|>") => ChatFormat::ChatMl,
            _ if token("<|start_header_id|>").is_some() => ChatFormat::Llama3,
            _ => {
                if token("<|im_start|>").is_none() {
                    tracing::warn!(model = %name, "unknown chat template; laying prompts out as ChatML");
                }
                ChatFormat::ChatMl
            }
        };
        let default_system = match format {
            ChatFormat::ChatMl => template.as_deref().and_then(template_default_system),
            ChatFormat::Llama3 => None,
        };
        let mut stop_tokens: Vec<u32> = ["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| token(t))
            .collect();
        stop_tokens.extend(info.eos);
        stop_tokens.sort_unstable();
        stop_tokens.dedup();

        let device = Device::Cpu;
        let (base, requantized) = match requantize(&content, &mut reader)? {
            Some((buffer, changed)) => {
                let mut reader = Cursor::new(buffer);
                let content = Content::read(&mut reader).map_err(|e| gguf_error(path, &e))?;
                (ModelWeights::from_gguf(content, &mut reader, &device)?, changed)
            }
            None => (ModelWeights::from_gguf(content, &mut reader, &device)?, 0),
        };
        Ok(ChatModel {
            base,
            tokenizer,
            info,
            format,
            default_system,
            template,
            stop_tokens,
            context_length,
            name,
            requantized,
            device,
            queue: Mutex::new(()),
        })
    }

    /// Loads [`default_chat_model_path`].
    pub fn load_default() -> Result<Self> {
        Self::load(&default_chat_model_path())
    }

    /// The model's name from its metadata.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> ChatFormat {
        self.format
    }

    /// How many tokens fit in one conversation (prompt and reply).
    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// How many weight tensors were re-quantised to Q8_0 at load.
    pub fn requantized_tensors(&self) -> usize {
        self.requantized
    }

    /// The chat template stored in the GGUF, if any.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn tokenizer_info(&self) -> &TokenizerInfo {
        &self.info
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, false)?.get_ids().to_vec())
    }

    /// Text of token ids, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(self.tokenizer.decode(ids, true)?)
    }

    /// Lays a conversation out as the model expects it; with `add_generation_prompt`, ends with the
    /// start of the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        match self.format {
            ChatFormat::ChatMl => {
                if let Some(default) = &self.default_system
                    && messages.first().is_none_or(|m| m.role != Role::System)
                {
                    out.push_str(&format!("<|im_start|>system\n{default}<|im_end|>\n"));
                }
                for m in messages {
                    out.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content));
                }
                if add_generation_prompt {
                    out.push_str("<|im_start|>assistant\n");
                }
            }
            ChatFormat::Llama3 => {
                out.push_str("<|begin_of_text|>");
                for m in messages {
                    out.push_str(&format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role.as_str(),
                        m.content.trim()
                    ));
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
        }
        out
    }

    fn prompt_tokens(&self, messages: &[Message], add_generation_prompt: bool) -> Result<Vec<u32>> {
        let mut tokens = Vec::new();
        if self.info.add_bos
            && self.format == ChatFormat::ChatMl
            && let Some(bos) = self.info.bos
        {
            tokens.push(bos);
        }
        tokens.extend(self.encode(&self.render(messages, add_generation_prompt))?);
        Ok(tokens)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, ()> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the prompt of `messages` (typically just the system prompt) once and keeps its attention
    /// state for generations that start the same way.
    pub fn prefill(&self, messages: &[Message]) -> Result<PromptCache> {
        let tokens = self.prompt_tokens(messages, false)?;
        if tokens.len() >= self.context_length {
            return Err(Error::Invalid(format!(
                "the prompt takes {} tokens; the model's context holds {}",
                tokens.len(),
                self.context_length
            )));
        }
        let _turn = self.lock_queue();
        let mut weights = self.base.clone();
        if !tokens.is_empty() {
            let input = Tensor::new(tokens.as_slice(), &self.device)?.unsqueeze(0)?;
            weights.forward(&input, 0)?;
        }
        Ok(PromptCache { weights, tokens })
    }

    /// [`prefill`](Self::prefill) for a conversation's system prompt.
    pub fn prefill_system(&self, system_prompt: &str) -> Result<PromptCache> {
        self.prefill(&[Message::system(system_prompt)])
    }

    /// Generates the assistant's next turn after `messages`, passing the text to `on_text` as it comes
    /// (each piece is whole UTF-8; return `ControlFlow::Break(())` to stop). When `cache` holds the start
    /// of this prompt, only the rest is computed; otherwise the whole prompt is. Waits for any other
    /// generation to finish first.
    pub fn generate(
        &self,
        messages: &[Message],
        cache: Option<&PromptCache>,
        params: &GenerationParams,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let tokens = self.prompt_tokens(messages, true)?;
        if tokens.len() >= self.context_length {
            return Err(Error::Invalid(format!(
                "the conversation takes {} tokens; the model's context holds {}: drop or summarise older turns",
                tokens.len(),
                self.context_length
            )));
        }
        let waiting = Instant::now();
        let _turn = self.lock_queue();
        let queued = waiting.elapsed();
        let started = Instant::now();

        let (mut weights, cached) = match cache {
            Some(c)
                if !c.tokens.is_empty() && c.tokens.len() < tokens.len() && tokens.starts_with(&c.tokens) =>
            {
                (c.weights.clone(), c.tokens.len())
            }
            _ => (self.base.clone(), 0),
        };
        let input = Tensor::new(&tokens[cached..], &self.device)?.unsqueeze(0)?;
        let mut logits = weights.forward(&input, cached)?.squeeze(0)?;

        let seed = params.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match params.top_p {
                Some(p) if p > 0.0 && p < 1.0 => Sampling::TopP { p, temperature: params.temperature },
                _ => Sampling::All { temperature: params.temperature },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(seed, sampling);

        let mut context = tokens.clone();
        let mut stream = TextStream::default();
        let mut text = String::new();
        let mut generated = 0usize;
        let mut first_token = None;
        let mut stop = StopReason::MaxTokens;
        while generated < params.max_tokens {
            let mut step = logits.to_dtype(DType::F32)?;
            if (params.repeat_penalty - 1.0).abs() > f32::EPSILON {
                let recent = &context[context.len().saturating_sub(params.repeat_last_n)..];
                step =
                    candle_transformers::utils::apply_repeat_penalty(&step, params.repeat_penalty, recent)?;
            }
            let next = sampler.sample(&step)?;
            first_token.get_or_insert_with(|| started.elapsed());
            if self.stop_tokens.contains(&next) {
                stop = StopReason::EndOfTurn;
                break;
            }
            context.push(next);
            generated += 1;
            if let Some(delta) = stream.push(&self.tokenizer, next)? {
                text.push_str(&delta);
                if on_text(&delta).is_break() {
                    stop = StopReason::Cancelled;
                    break;
                }
            }
            if context.len() >= self.context_length {
                stop = StopReason::ContextFull;
                break;
            }
            if generated < params.max_tokens {
                let input = Tensor::new(&[next], &self.device)?.unsqueeze(0)?;
                logits = weights.forward(&input, context.len() - 1)?.squeeze(0)?;
            }
        }
        Ok(Generation {
            text,
            stop,
            prompt_tokens: tokens.len(),
            cached_prompt_tokens: cached,
            generated_tokens: generated,
            time_to_first_token: first_token.unwrap_or_else(|| started.elapsed()),
            queued,
            elapsed: started.elapsed(),
        })
    }
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8 (a character split over
/// several byte-level tokens is held back until it is complete).
#[derive(Default, Debug)]
pub struct TextStream {
    tokens: Vec<u32>,
    /// Tokens before `emitted_from` are out; `emitted_to` marks the end of the text already sent.
    emitted_from: usize,
    emitted_to: usize,
}

impl TextStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token; returns the text it completes, if any.
    pub fn push(&mut self, tokenizer: &Tokenizer, token: u32) -> Result<Option<String>> {
        let sent = tokenizer.decode(&self.tokens[self.emitted_from..self.emitted_to], true)?;
        self.tokens.push(token);
        let all = tokenizer.decode(&self.tokens[self.emitted_from..], true)?;
        if all.len() > sent.len() && !all.ends_with('\u{FFFD}') && all.starts_with(&sent) {
            let delta = all[sent.len()..].to_string();
            self.emitted_from = self.emitted_to;
            self.emitted_to = self.tokens.len();
            return Ok(Some(delta));
        }
        Ok(None)
    }
}
