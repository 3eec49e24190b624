//! Sentence embeddings with all-MiniLM-L6-v2: a BERT encoder ([`crate::encoder`]), mean pooling over
//! the tokens, L2 normalisation. 384 dimensions; cosine similarity is a dot product.
//!
//! [`CandleBert`] computes the same embeddings with candle's `BertModel`: the reference the encoder is
//! tested and benchmarked against.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::encoder::{BertEncoder, Precision};
use crate::fetch::{EMBEDDING_MODEL_DIR, default_models_dir};
use crate::{Error, Result};

/// The longest input, in tokens (the model was trained with 256; longer texts are truncated).
pub const MAX_TOKENS: usize = 256;

/// A loaded sentence-embedding model. Cheap to share between threads (`&self` everywhere).
pub struct Embedder {
    encoder: BertEncoder,
    tokenizer: Tokenizer,
    dimension: usize,
    combiner: Combiner,
}

/// The most tokens one pass embeds for concurrent callers together.
const MAX_PASS_TOKENS: usize = 512;

/// Concurrent callers' texts, embedded together. A caller queues its texts; while fewer passes run than
/// there are cores, it takes everything queued (up to [`MAX_PASS_TOKENS`]) and embeds it in one pass
/// ([`BertEncoder::embed_many`]), then hands every caller its vectors; otherwise it waits for a pass to
/// finish. Alone, a caller runs its own pass at once: nothing waits for a batch to fill. Under load (a
/// hundred children chatting, each message and reply sentence assessed) the encoder reads its weights once
/// per pass instead of once per text, which is what a short text costs.
struct Combiner {
    state: Mutex<CombinerState>,
    pass_finished: Condvar,
    /// The most passes at once: one per core (read once: asking the system reads files each time).
    passes: usize,
}

#[derive(Default)]
struct CombinerState {
    next_ticket: u64,
    queue: VecDeque<(u64, Vec<Vec<u32>>)>,
    finished: HashMap<u64, std::result::Result<Vec<Vec<f32>>, String>>,
    running: usize,
}

/// A pass taken from the queue: whatever happens to it (an error, a panic), its callers get an answer
/// and the pass is counted as done.
struct Pass<'a> {
    combiner: &'a Combiner,
    requests: Vec<(u64, usize)>,
    result: Option<Result<Vec<Vec<f32>>>>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut state = self.combiner.lock();
        match self.result.take() {
            Some(Ok(vectors)) => {
                let mut vectors = vectors.into_iter();
                for &(ticket, count) in &self.requests {
                    state.finished.insert(ticket, Ok(vectors.by_ref().take(count).collect()));
                }
            }
            failed => {
                let message = match failed {
                    Some(Err(err)) => err.to_string(),
                    _ => "the embedding pass panicked".to_string(),
                };
                for &(ticket, _) in &self.requests {
                    state.finished.insert(ticket, Err(message.clone()));
                }
            }
        }
        state.running -= 1;
        self.combiner.pass_finished.notify_all();
    }
}

impl Combiner {
    fn new() -> Self {
        Combiner {
            state: Mutex::default(),
            pass_finished: Condvar::new(),
            passes: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CombinerState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn embed(&self, encoder: &BertEncoder, texts: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>> {
        let passes = self.passes;
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back((ticket, texts));
        loop {
            if let Some(result) = state.finished.remove(&ticket) {
                return result.map_err(Error::Invalid);
            }
            if state.running >= passes || state.queue.is_empty() {
                state = self.pass_finished.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            let mut taken = Vec::new();
            let mut tokens = 0;
            while let Some((_, next)) = state.queue.front() {
                let cost: usize = next.iter().map(Vec::len).sum();
                if !taken.is_empty() && tokens + cost > MAX_PASS_TOKENS {
                    break;
                }
                tokens += cost;
                let Some(request) = state.queue.pop_front() else { break };
                taken.push(request);
            }
            state.running += 1;
            drop(state);
            let mut pass = Pass {
                combiner: self,
                requests: taken.iter().map(|(ticket, texts)| (*ticket, texts.len())).collect(),
                result: None,
            };
            let all: Vec<&[u32]> =
                taken.iter().flat_map(|(_, texts)| texts.iter().map(Vec::as_slice)).collect();
            pass.result = Some(encoder.embed_many(&all));
            drop(pass);
            state = self.lock();
        }
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dimension", &self.dimension).finish_non_exhaustive()
    }
}

/// The folder of the default embedding model: `<models dir>/all-minilm-l6-v2`.
pub fn default_embedding_dir() -> PathBuf {
    default_models_dir().join(EMBEDDING_MODEL_DIR)
}

fn require(path: PathBuf) -> Result<PathBuf> {
    if path.is_file() { Ok(path) } else { Err(Error::MissingModel { path }) }
}

fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let tokenizer_path = require(dir.join("tokenizer.json"))?;
    let mut tokenizer = Tokenizer::from_file(&tokenizer_path)?;
    // The shipped tokenizer pads every input to 128 tokens: pad to the longest of a batch instead.
    let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        pad_id,
        pad_token: "[PAD]".into(),
        ..PaddingParams::default()
    }));
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))?;
    Ok(tokenizer)
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`, with 8-bit weights.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, Precision::default())
    }

    /// Loads the model from `dir` with its dense layers' weights in `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self> {
        let config_path = require(dir.join("config.json"))?;
        let weights_path = require(dir.join("model.safetensors"))?;
        let tokenizer = load_tokenizer(dir)?;
        let encoder = BertEncoder::load(&config_path, &weights_path, precision)?;
        let dimension = encoder.dimension();
        Ok(Embedder { encoder, tokenizer, dimension, combiner: Combiner::new() })
    }

    /// Loads the default model from the models folder (`ONDA_MODELS_DIR`).
    pub fn load_default() -> Result<Self> {
        Self::load(&default_embedding_dir())
    }

    /// The length of every embedding (384 for all-MiniLM-L6-v2).
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// How many tokens `text` costs (with the two special tokens, after truncation).
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.token_ids(text)?.len())
    }

    /// The token ids of `text` as the encoder reads it (with the two special tokens, truncated to
    /// [`MAX_TOKENS`]): what tools that fine-tune the encoder feed it.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.tokenizer.encode(text, true)?.get_ids().to_vec())
    }

    /// One unit-length embedding per text, in order, each exactly as if embedded alone (no padding).
    /// Texts are truncated to [`MAX_TOKENS`] tokens. Concurrent calls are embedded together (see
    /// [`Combiner`]); a call runs on its caller's thread or waits for another caller's pass.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = texts.iter().map(|text| self.token_ids(text)).collect::<Result<Vec<_>>>()?;
        let mut vectors = Vec::with_capacity(texts.len());
        // A long batch (the lab's) goes through in passes of about MAX_PASS_TOKENS.
        let mut start = 0;
        while start < ids.len() {
            let mut end = start + 1;
            let mut tokens = ids[start].len();
            while end < ids.len() && tokens + ids[end].len() <= MAX_PASS_TOKENS {
                tokens += ids[end].len();
                end += 1;
            }
            vectors.extend(self.combiner.embed(&self.encoder, ids[start..end].to_vec())?);
            start = end;
        }
        Ok(vectors)
    }

    /// The embedding of one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>> {
        self.embed(&[text])?.pop().ok_or_else(|| Error::Invalid("no embedding".into()))
    }
}

/// The same sentence embeddings computed by candle's `BertModel`, in padded batches: the reference
/// [`Embedder`] is tested and benchmarked against. Slower for one short text (see `embed-bench`).
pub struct CandleBert {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl CandleBert {
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = require(dir.join("config.json"))?;
        let weights_path = require(dir.join("model.safetensors"))?;
        let tokenizer = load_tokenizer(dir)?;
        let config_text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", config_path.display())))?;
        let device = Device::Cpu;
        let weights = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &config)?;
        Ok(CandleBert { model, tokenizer, device })
    }

    /// One unit-length embedding per text, in order; texts are padded to the longest of the batch and the
    /// padding is masked out of the mean.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true)?;
        let len = encodings.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(texts.len() * len);
        let mut mask = Vec::with_capacity(texts.len() * len);
        for encoding in &encodings {
            ids.extend_from_slice(encoding.get_ids());
            mask.extend_from_slice(encoding.get_attention_mask());
        }
        let shape = (texts.len(), len);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?; // (batch, len, dim)

        // Mean over the real tokens.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (batch, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (batch, dim)
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (batch, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        let normalised = mean.broadcast_div(&norms)?;
        Ok(normalised.to_vec2::<f32>()?)
    }
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The safety engine's layer 2 reads embeddings through this trait (the engine itself does no IO).
impl onda_safety::TextEmbedder for Embedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, String> {
        Embedder::embed(self, texts).map_err(|e| e.to_string())
    }
}

/// The safety engine's learned scorer over the default embedding model and the built-in head, or None
/// when the model has not been fetched (`onda models fetch`).
pub fn default_safety_scorer() -> Result<Option<onda_safety::EmbeddingScorer<Embedder>>> {
    safety_scorer(&default_models_dir())
}

/// The folder of the embedding model inside `models_dir`, when its weights are there.
pub fn embedding_model_in(models_dir: &Path) -> Option<PathBuf> {
    let dir = models_dir.join(EMBEDDING_MODEL_DIR);
    dir.join("model.safetensors").is_file().then_some(dir)
}

/// The safety engine's learned scorer over the embedding model in `models_dir` and the built-in head, or
/// None when the model is not there.
pub fn safety_scorer(models_dir: &Path) -> Result<Option<onda_safety::EmbeddingScorer<Embedder>>> {
    let Some(dir) = embedding_model_in(models_dir) else {
        return Ok(None);
    };
    let embedder = Embedder::load(&dir)?;
    let head = onda_safety::EmbeddingHead::builtin().map_err(|e| Error::Invalid(e.to_string()))?;
    let scorer =
        onda_safety::EmbeddingScorer::new(embedder, head).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(Some(scorer))
}
