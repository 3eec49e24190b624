//! A BERT encoder (all-MiniLM-L6-v2's architecture) written for one short text at a time on the CPU.
//!
//! candle's `BertModel` spent most of a short message's time outside the matrix products (a kid's
//! 8-token message cost 7 ms, of which the products are under 2): every small operation allocates a
//! tensor and wakes a thread pool, and its GELU evaluates `erf` one element at a time. This encoder keeps
//! the activations in a few reused buffers, fuses the bias, GELU, softmax and layer norms into plain loops
//! the compiler vectorises, and multiplies on the calling thread (the server runs one verdict per core, so
//! a thread pool would only steal the other core): the dense layers with a kernel of their own over 8-bit
//! weights ([`Precision`]), attention with faer. With f32 weights its output matches candle's to float
//! rounding (a test compares them); with 8-bit weights it stays within 0.005 in cosine.
//!
//! Activations are column-major, one column per feature (`m` tokens each): a tile's tokens are adjacent
//! for every input the dense kernel reads, and a head's query, key and value are a contiguous block of
//! columns.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use faer::{Accum, MatMut, MatRef, Par};
use serde::Deserialize;

use crate::{Error, Result};

/// The fields of a BERT `config.json` this encoder reads.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// How the dense layers' weights are kept and multiplied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// 8-bit integers with one scale per output, widened to f32 inside the product: a quarter of the
    /// memory, and a kid's short message embeds about three times faster (a short text's pass is bound by
    /// reading the weights: 42 MB of f32 do not stay in the cache). Embeddings stay within about 0.002 of
    /// the f32 ones in cosine, and the safety evaluation measured the same (`crates/safety/README.md`).
    #[default]
    Int8,
    /// The model's own f32 weights: the exact reference the tests compare against other implementations.
    F32,
}

/// Outputs per block of a dense layer's weights: one AVX-512 vector of f32, or two AVX2 ones.
const BLOCK: usize = 16;
/// The most vectors a block's outputs may take for the vectorised product (four of 128 bits).
const MAX_VECTORS: usize = 4;

/// A dense layer `y = x·Wᵀ + b`. The outputs of a block lie in a vector's lanes, so a text of a few
/// tokens still fills them (a product with the tokens in the lanes left most of them empty), and a tile
/// of tokens keeps its sums in registers while the block's weights stream past once.
struct Dense {
    weights: DenseWeights,
    /// Per output, padded to whole blocks: the value of one step of its integers (1 for f32 weights).
    scale: Vec<f32>,
    /// Padded like `scale`.
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

/// Blocks of [`BLOCK`] outputs (the last padded with zeros); within a block, the weights of input `i` for
/// its outputs are adjacent.
enum DenseWeights {
    Int8(Vec<i8>),
    F32(Vec<f32>),
}

/// A weight as the product reads it.
trait Weight: Copy + Default {
    fn widen(self) -> f32;
}

impl Weight for i8 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self)
    }
}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

/// `weight` (PyTorch's `[out, in]` row-major) as blocks of `outputs.div_ceil(BLOCK) * BLOCK` outputs,
/// each value mapped by `to`.
fn blocked<W: Weight>(weight: &[f32], inputs: usize, outputs: usize, to: impl Fn(usize, f32) -> W) -> Vec<W> {
    let mut blocked = vec![W::default(); outputs.div_ceil(BLOCK) * BLOCK * inputs];
    for (o, row) in weight.chunks_exact(inputs).enumerate() {
        let (block, lane) = (o / BLOCK, o % BLOCK);
        for (i, &w) in row.iter().enumerate() {
            blocked[(block * inputs + i) * BLOCK + lane] = to(o, w);
        }
    }
    blocked
}

impl Dense {
    /// From PyTorch's `[out, in]` row-major weights. In 8 bits, each output's weights become integers in
    /// -127..=127 times one scale (its largest weight / 127).
    fn new(weight: &[f32], mut bias: Vec<f32>, inputs: usize, outputs: usize, precision: Precision) -> Self {
        let padded = outputs.div_ceil(BLOCK) * BLOCK;
        let mut scale = vec![1.0f32; padded];
        let weights = match precision {
            Precision::F32 => DenseWeights::F32(blocked(weight, inputs, outputs, |_, w| w)),
            Precision::Int8 => {
                for (o, row) in weight.chunks_exact(inputs).enumerate() {
                    let largest = row.iter().fold(0.0f32, |a, w| a.max(w.abs()));
                    if largest > 0.0 {
                        scale[o] = largest / 127.0;
                    }
                }
                DenseWeights::Int8(blocked(weight, inputs, outputs, |o, w| {
                    (w / scale[o]).round().clamp(-127.0, 127.0) as i8
                }))
            }
        };
        bias.resize(padded, 0.0);
        Dense { weights, scale, bias, inputs, outputs }
    }

    /// `out` (m × outputs) = `x` (m × inputs) · Wᵀ + b, both column-major.
    fn forward(&self, simd: pulp::Arch, x: &[f32], m: usize, out: &mut [f32]) {
        let x = &x[..m * self.inputs];
        let out = &mut out[..m * self.outputs];
        match &self.weights {
            DenseWeights::Int8(weights) => simd.dispatch(DenseForward { dense: self, weights, x, m, out }),
            DenseWeights::F32(weights) => simd.dispatch(DenseForward { dense: self, weights, x, m, out }),
        }
    }
}

struct DenseForward<'a, W> {
    dense: &'a Dense,
    weights: &'a [W],
    x: &'a [f32],
    m: usize,
    out: &'a mut [f32],
}

impl<W: Weight> pulp::WithSimd for DenseForward<'_, W> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let DenseForward { dense, weights, x, m, out } = self;
        // Tokens go in tiles of at most `largest` (their sums then fill about half the vector registers),
        // as even as possible: a tile costs its multiply-adds plus one widening of the block's weights.
        let largest = match S::F32_LANES {
            16.. => 8,
            8 => 6,
            _ => 2,
        };
        let tiles = m.div_ceil(largest);
        for (b, weights) in weights.chunks_exact(BLOCK * dense.inputs).enumerate() {
            let range = b * BLOCK..(b + 1) * BLOCK;
            let block = Block {
                weights,
                scale: &dense.scale[range.clone()],
                bias: &dense.bias[range],
                first_output: b * BLOCK,
                outputs: dense.outputs,
            };
            let mut t0 = 0;
            for tile in 0..tiles {
                let size = m / tiles + usize::from(tile < m % tiles);
                match size {
                    1 => block.tile::<S, 1>(simd, x, m, t0, out),
                    2 => block.tile::<S, 2>(simd, x, m, t0, out),
                    3 => block.tile::<S, 3>(simd, x, m, t0, out),
                    4 => block.tile::<S, 4>(simd, x, m, t0, out),
                    5 => block.tile::<S, 5>(simd, x, m, t0, out),
                    6 => block.tile::<S, 6>(simd, x, m, t0, out),
                    7 => block.tile::<S, 7>(simd, x, m, t0, out),
                    _ => block.tile::<S, 8>(simd, x, m, t0, out),
                }
                t0 += size;
            }
        }
    }
}

/// One block of a dense layer's outputs.
struct Block<'a, W> {
    weights: &'a [W],
    scale: &'a [f32],
    bias: &'a [f32],
    first_output: usize,
    outputs: usize,
}

impl<W: Weight> Block<'_, W> {
    /// The block's outputs for tokens `t0..t0 + T`: each input's weights widen to f32 once and meet the
    /// T tokens' values in multiply-adds, the sums staying in registers (T × the block's vectors). Every
    /// token's sum runs over the inputs in the same order whatever the tiles, so a text's embedding does
    /// not depend on the texts it shares a pass with.
    #[inline(always)]
    fn tile<S: pulp::Simd, const T: usize>(&self, simd: S, x: &[f32], m: usize, t0: usize, out: &mut [f32]) {
        // The block's outputs fill `vectors` vectors: one on AVX-512, two on AVX2, four on 128-bit ones.
        let vectors = BLOCK / S::F32_LANES;
        if vectors > MAX_VECTORS {
            return self.tile_scalar(x, m, t0, T, out);
        }
        let zero = simd.splat_f32s(0.0);
        let mut sums = [[zero; MAX_VECTORS]; T];
        for (weights, column) in self.weights.chunks_exact(BLOCK).zip(x.chunks_exact(m)) {
            let widened: [f32; BLOCK] = std::array::from_fn(|j| weights[j].widen());
            let (w, _) = S::as_simd_f32s(&widened);
            for (sum, &xt) in sums.iter_mut().zip(&column[t0..t0 + T]) {
                let xt = simd.splat_f32s(xt);
                for (s, &w) in sum.iter_mut().zip(w).take(vectors) {
                    *s = simd.mul_add_e_f32s(xt, w, *s);
                }
            }
        }
        for (t, sum) in sums.iter().enumerate() {
            let mut values = [0.0f32; BLOCK];
            for (v, s) in S::as_mut_simd_f32s(&mut values).0.iter_mut().zip(sum) {
                *v = *s;
            }
            self.store(&values, m, t0 + t, out);
        }
    }

    /// Token `t`'s sums for the block's outputs, scaled and biased, into the column-major `out`
    /// (the padding outputs of the last block left out).
    #[inline(always)]
    fn store(&self, sums: &[f32; BLOCK], m: usize, t: usize, out: &mut [f32]) {
        for (j, sum) in sums.iter().enumerate() {
            let output = self.first_output + j;
            if output < self.outputs {
                out[output * m + t] = sum * self.scale[j] + self.bias[j];
            }
        }
    }

    /// [`Block::tile`] in plain arithmetic, for vectors too narrow to hold a block's outputs in a few
    /// registers (no SIMD at all).
    fn tile_scalar(&self, x: &[f32], m: usize, t0: usize, tokens: usize, out: &mut [f32]) {
        for t in t0..t0 + tokens {
            let mut sums = [0.0f32; BLOCK];
            for (weights, column) in self.weights.chunks_exact(BLOCK).zip(x.chunks_exact(m)) {
                for (s, w) in sums.iter_mut().zip(weights) {
                    *s += column[t] * w.widen();
                }
            }
            self.store(&sums, m, t, out);
        }
    }
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    /// Normalises each token (a row of the column-major `x`, m × features) in place.
    fn forward(&self, x: &mut [f32], m: usize, mean: &mut Vec<f32>, var: &mut Vec<f32>) {
        let features = self.gamma.len();
        let x = &mut x[..m * features];
        mean.clear();
        mean.resize(m, 0.0);
        var.clear();
        var.resize(m, 0.0);
        for column in x.chunks_exact(m) {
            for (s, v) in mean.iter_mut().zip(column) {
                *s += v;
            }
        }
        let n = features as f32;
        mean.iter_mut().for_each(|s| *s /= n);
        for column in x.chunks_exact(m) {
            for ((s, v), mu) in var.iter_mut().zip(column).zip(mean.iter()) {
                let d = v - mu;
                *s += d * d;
            }
        }
        // var becomes 1 / sqrt(variance + eps).
        var.iter_mut().for_each(|s| *s = 1.0 / (*s / n + self.eps).sqrt());
        for ((column, &g), &b) in x.chunks_exact_mut(m).zip(&self.gamma).zip(&self.beta) {
            for ((v, mu), inv) in column.iter_mut().zip(mean.iter()).zip(var.iter()) {
                *v = (*v - mu) * inv * g + b;
            }
        }
    }
}

struct Layer {
    /// Query, key and value in one product: outputs 0..h are the queries, h..2h the keys, 2h..3h the values.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// A BERT encoder with mean pooling: text → unit-length sentence embedding.
pub struct BertEncoder {
    config: BertConfig,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Token type 0's embedding (every token of a single text is type 0).
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    /// Buffers for the passes running now (one per concurrent pass, reused after it).
    scratch: std::sync::Mutex<Vec<Scratch>>,
    /// The widest vector instructions this CPU has (AVX-512, AVX2 or none), chosen at run time.
    simd: pulp::Arch,
}

/// The buffers of one forward pass, sized for the longest input so far.
#[derive(Default)]
struct Scratch {
    hidden: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attention: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

fn take(tensors: &mut HashMap<String, Tensor>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let tensor =
        tensors.remove(name).ok_or_else(|| Error::Invalid(format!("the model has no tensor {name}")))?;
    if tensor.dims() != shape {
        return Err(Error::Invalid(format!("{name} has shape {:?}, expected {shape:?}", tensor.dims())));
    }
    Ok(tensor.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

/// A dense layer's weight (`[outputs, inputs]`) and bias as stored.
fn dense_tensors(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    inputs: usize,
    outputs: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    Ok((
        take(tensors, &format!("{prefix}.weight"), &[outputs, inputs])?,
        take(tensors, &format!("{prefix}.bias"), &[outputs])?,
    ))
}

fn dense(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    inputs: usize,
    outputs: usize,
    precision: Precision,
) -> Result<Dense> {
    let (weight, bias) = dense_tensors(tensors, prefix, inputs, outputs)?;
    Ok(Dense::new(&weight, bias, inputs, outputs, precision))
}

fn layer_norm(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    size: usize,
    eps: f32,
) -> Result<LayerNorm> {
    Ok(LayerNorm {
        gamma: take(tensors, &format!("{prefix}.weight"), &[size])?,
        beta: take(tensors, &format!("{prefix}.bias"), &[size])?,
        eps,
    })
}

impl BertEncoder {
    /// Reads the weights of a BERT `model.safetensors` (with or without the `bert.` prefix), keeping the
    /// dense layers' weights in `precision`.
    pub fn from_safetensors(config: BertConfig, weights: &[u8], precision: Precision) -> Result<Self> {
        if config.hidden_act != "gelu" {
            return Err(Error::Invalid(format!("unsupported activation {:?}: only gelu", config.hidden_act)));
        }
        let h = config.hidden_size;
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            return Err(Error::Invalid("hidden_size is not a multiple of num_attention_heads".into()));
        }
        let mut tensors: HashMap<String, Tensor> =
            candle_core::safetensors::load_buffer(weights, &Device::Cpu)?
                .into_iter()
                .map(|(name, t)| (name.strip_prefix("bert.").map(str::to_owned).unwrap_or(name), t))
                .collect();
        let word = tensors
            .get("embeddings.word_embeddings.weight")
            .ok_or_else(|| Error::Invalid("the model has no word embeddings".into()))?;
        let vocab = word.dims().first().copied().unwrap_or(0);
        let eps = config.layer_norm_eps as f32;
        let word_embeddings = take(&mut tensors, "embeddings.word_embeddings.weight", &[vocab, h])?;
        let position_embeddings = take(
            &mut tensors,
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_types = tensors
            .get("embeddings.token_type_embeddings.weight")
            .map(|t| t.dims().first().copied().unwrap_or(0))
            .unwrap_or(0);
        let mut token_type =
            take(&mut tensors, "embeddings.token_type_embeddings.weight", &[token_types, h])?;
        token_type.truncate(h);
        let embedding_norm = layer_norm(&mut tensors, "embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (mut weight, mut bias) = (Vec::with_capacity(3 * h * h), Vec::with_capacity(3 * h));
            for part in ["query", "key", "value"] {
                let (w, b) = dense_tensors(&mut tensors, &format!("{p}.attention.self.{part}"), h, h)?;
                weight.extend(w);
                bias.extend(b);
            }
            let qkv = Dense::new(&weight, bias, h, 3 * h, precision);
            layers.push(Layer {
                qkv,
                attention_out: dense(&mut tensors, &format!("{p}.attention.output.dense"), h, h, precision)?,
                attention_norm: layer_norm(&mut tensors, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: dense(
                    &mut tensors,
                    &format!("{p}.intermediate.dense"),
                    h,
                    config.intermediate_size,
                    precision,
                )?,
                output: dense(
                    &mut tensors,
                    &format!("{p}.output.dense"),
                    config.intermediate_size,
                    h,
                    precision,
                )?,
                output_norm: layer_norm(&mut tensors, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(BertEncoder {
            config,
            word_embeddings,
            position_embeddings,
            token_type,
            embedding_norm,
            layers,
            scratch: std::sync::Mutex::default(),
            simd: pulp::Arch::new(),
        })
    }

    /// Loads `config.json` and `model.safetensors`.
    pub fn load(config_path: &Path, weights_path: &Path, precision: Precision) -> Result<Self> {
        let config_text = std::fs::read_to_string(config_path).map_err(|e| Error::io(config_path, e))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", config_path.display())))?;
        let weights = std::fs::read(weights_path).map_err(|e| Error::io(weights_path, e))?;
        Self::from_safetensors(config, &weights, precision)
    }

    pub fn dimension(&self) -> usize {
        self.config.hidden_size
    }

    /// The longest input, in tokens (the position embeddings).
    pub fn max_tokens(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The unit-length mean-pooled embeddings of several tokenised texts (special tokens included) in one
    /// pass, each exactly as if alone. Their tokens are stacked, not padded: the dense layers (most of the
    /// work) then read their weights once for all of them, which is what a short text waits for (42 MB of
    /// weights do not stay in the cache), while attention runs within each text.
    pub fn embed_many(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let vocab = self.word_embeddings.len() / self.config.hidden_size;
        for ids in texts {
            if ids.is_empty() || ids.len() > self.max_tokens() {
                return Err(Error::Invalid(format!(
                    "{} tokens: expected 1 to {}",
                    ids.len(),
                    self.max_tokens()
                )));
            }
            if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::Invalid(format!("token id {bad} is outside the vocabulary of {vocab}")));
            }
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let pool = || self.scratch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut scratch = pool().pop().unwrap_or_default();
        let embeddings = self.forward(texts, &mut scratch);
        pool().push(scratch);
        Ok(embeddings)
    }

    fn forward(&self, texts: &[&[u32]], s: &mut Scratch) -> Vec<Vec<f32>> {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let head_size = h / heads;
        // Text i holds the rows (tokens) spans[i].
        let mut spans = Vec::with_capacity(texts.len());
        let mut m = 0;
        for ids in texts {
            spans.push(m..m + ids.len());
            m += ids.len();
        }
        let longest = texts.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let resize = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        resize(&mut s.hidden, m * h);
        resize(&mut s.qkv, m * 3 * h);
        resize(&mut s.context, m * h);
        resize(&mut s.attention, m * h);
        resize(&mut s.intermediate, m * self.config.intermediate_size);
        resize(&mut s.scores, longest * longest);

        // Embeddings: word + position + token type, then layer norm.
        for (ids, span) in texts.iter().zip(&spans) {
            for (position, &id) in ids.iter().enumerate() {
                let row = span.start + position;
                let word = &self.word_embeddings[id as usize * h..][..h];
                let position = &self.position_embeddings[position * h..][..h];
                for f in 0..h {
                    s.hidden[f * m + row] = word[f] + position[f] + self.token_type[f];
                }
            }
        }
        self.embedding_norm.forward(&mut s.hidden, m, &mut s.mean, &mut s.var);

        let scale = 1.0 / (head_size as f32).sqrt();
        for layer in &self.layers {
            layer.qkv.forward(self.simd, &s.hidden, m, &mut s.qkv);
            let (queries, rest) = s.qkv[..3 * h * m].split_at(h * m);
            let (keys, values) = rest.split_at(h * m);
            for span in &spans {
                let n = span.len();
                for head in 0..heads {
                    // Rows `span` of the head's block of columns: column stride m.
                    let block = head * head_size * m + span.start..(head + 1) * head_size * m;
                    let q =
                        MatRef::from_column_major_slice_with_stride(&queries[block.clone()], n, head_size, m);
                    let k =
                        MatRef::from_column_major_slice_with_stride(&keys[block.clone()], n, head_size, m);
                    let v =
                        MatRef::from_column_major_slice_with_stride(&values[block.clone()], n, head_size, m);
                    // Column i of `scores` holds query i's scores over every key: softmax runs down a column.
                    let scores = &mut s.scores[..n * n];
                    faer::linalg::matmul::matmul(
                        MatMut::from_column_major_slice_mut(scores, n, n),
                        Accum::Replace,
                        k,
                        q.transpose(),
                        scale,
                        Par::Seq,
                    );
                    self.simd.dispatch(SoftmaxColumns { scores, n });
                    let probabilities = MatRef::from_column_major_slice(scores, n, n).transpose();
                    faer::linalg::matmul::matmul(
                        MatMut::from_column_major_slice_with_stride_mut(
                            &mut s.context[block.clone()],
                            n,
                            head_size,
                            m,
                        ),
                        Accum::Replace,
                        probabilities,
                        v,
                        1.0f32,
                        Par::Seq,
                    );
                }
            }
            layer.attention_out.forward(self.simd, &s.context, m, &mut s.attention);
            add(&mut s.attention[..m * h], &s.hidden[..m * h]);
            layer.attention_norm.forward(&mut s.attention, m, &mut s.mean, &mut s.var);

            layer.intermediate.forward(self.simd, &s.attention, m, &mut s.intermediate);
            self.simd.dispatch(GeluInPlace(&mut s.intermediate[..m * self.config.intermediate_size]));
            layer.output.forward(self.simd, &s.intermediate, m, &mut s.hidden);
            add(&mut s.hidden[..m * h], &s.attention[..m * h]);
            layer.output_norm.forward(&mut s.hidden, m, &mut s.mean, &mut s.var);
        }

        // Mean over each text's tokens, then unit length.
        spans
            .iter()
            .map(|span| {
                let mut pooled: Vec<f32> = s.hidden[..m * h]
                    .chunks_exact(m)
                    .map(|column| column[span.clone()].iter().sum::<f32>() / span.len() as f32)
                    .collect();
                let norm = pooled.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                pooled.iter_mut().for_each(|x| *x /= norm);
                pooled
            })
            .collect()
    }
}

fn add(into: &mut [f32], other: &[f32]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

/// Softmax down each column of `n` values, in loops the compiler vectorises for the CPU's widest vectors
/// (libm's `expf`, one value at a time, was a twentieth of a pass).
struct SoftmaxColumns<'a> {
    scores: &'a mut [f32],
    n: usize,
}

impl pulp::WithSimd for SoftmaxColumns<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for column in self.scores.chunks_exact_mut(self.n) {
            softmax(column);
        }
    }
}

#[inline(always)]
fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in values.iter_mut() {
        *v = exp(*v - max);
    }
    let inverse = 1.0 / values.iter().sum::<f32>();
    values.iter_mut().for_each(|v| *v *= inverse);
}

/// e^x for f32 (Cephes' `expf`: x = k·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6 polynomial in r, times 2^k
/// built in the exponent bits), within a few units in the last place; plain arithmetic that vectorises.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let k = (x * std::f32::consts::LOG2_E + 0.5).floor();
    // ln 2 in two parts, so that k·ln 2 is subtracted exactly.
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((k as i32 + 127) as u32) << 23)
}

/// GELU over a slice, in place, with the CPU's widest vectors: the same arithmetic as [`gelu`] (whose
/// scalar form the plain build would otherwise run four lanes at a time, the largest cost after the matrix
/// products).
struct GeluInPlace<'a>(&'a mut [f32]);

impl pulp::WithSimd for GeluInPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let (body, tail) = S::as_mut_simd_f32s(self.0);
        let c = |v: f32| simd.splat_f32s(v);
        for v in body {
            let x = *v;
            let z = simd.mul_f32s(x, c(std::f32::consts::FRAC_1_SQRT_2));
            let z = simd.min_f32s(simd.max_f32s(z, c(-4.0)), c(4.0));
            let z2 = simd.mul_f32s(z, z);
            let mut p = simd.mul_add_f32s(z2, c(ERF_P[0]), c(ERF_P[1]));
            for &a in &ERF_P[2..] {
                p = simd.mul_add_f32s(z2, p, c(a));
            }
            p = simd.mul_f32s(p, z);
            let mut q = simd.mul_add_f32s(z2, c(ERF_Q[0]), c(ERF_Q[1]));
            for &b in &ERF_Q[2..] {
                q = simd.mul_add_f32s(z2, q, c(b));
            }
            let erf = simd.div_f32s(p, q);
            *v = simd.mul_f32s(simd.mul_f32s(c(0.5), x), simd.add_f32s(c(1.0), erf));
        }
        for v in tail {
            *v = gelu(*v);
        }
    }
}

/// GELU with the exact (erf) form BERT was trained with.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf for f32 as a rational function of x (the approximation Eigen and XLA use; within a few units in the
/// last place): the scalar twin of [`GeluInPlace`], for the few values past the last full vector.
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ERF_P[2..].iter().fold(x2 * ERF_P[0] + ERF_P[1], |p, &a| x2 * p + a) * x;
    let q = ERF_Q[2..].iter().fold(x2 * ERF_Q[0] + ERF_Q[1], |q, &b| x2 * q + b);
    p / q
}

/// erf's numerator (odd: x times a polynomial in x², highest power first) and denominator (in x²).
const ERF_P: [f32; 7] = [
    -2.726_142_3e-10,
    2.770_681_4e-8,
    -2.101_024e-6,
    -5.692_506_4e-5,
    -7.349_906_3e-4,
    -2.954_6e-3,
    -1.609_603_3e-2,
];
const ERF_Q: [f32; 5] = [-1.456_607_2e-5, -2.133_740_5e-4, -1.682_827e-3, -7.373_329_2e-3, -1.426_474e-2];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_the_reference_to_float_precision() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            let error = (f64::from(erf(x as f32)) - libm::erf(x)).abs();
            worst = worst.max(error);
        }
        assert!(worst < 2e-6, "worst error {worst}");
    }

    #[test]
    fn the_vectorised_gelu_equals_the_scalar_one() {
        let values: Vec<f32> = (-3000..3000).map(|i| i as f32 / 500.0).collect();
        let mut vectorised = values.clone();
        pulp::Arch::new().dispatch(GeluInPlace(&mut vectorised));
        for (x, v) in values.iter().zip(&vectorised) {
            assert!((gelu(*x) - v).abs() < 1e-6, "gelu({x}): {} vs {v}", gelu(*x));
        }
    }

    /// `out` = x · Wᵀ + b by the definition, column-major like the encoder's activations.
    fn naive(weight: &[f32], bias: &[f32], x: &[f32], m: usize, inputs: usize) -> Vec<f32> {
        let outputs = bias.len();
        let mut out = vec![0.0f32; m * outputs];
        for o in 0..outputs {
            for t in 0..m {
                let sum: f64 =
                    (0..inputs).map(|i| f64::from(x[i * m + t]) * f64::from(weight[o * inputs + i])).sum();
                out[o * m + t] = sum as f32 + bias[o];
            }
        }
        out
    }

    /// Every tile size and a last block of outputs that is not full, in both precisions.
    #[test]
    fn dense_layers_compute_the_product_for_any_number_of_tokens() {
        let (inputs, outputs) = (40, 37);
        // Deterministic values in -1..1 (a small linear congruential sequence).
        let mut state = 12345u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        };
        let weight: Vec<f32> = (0..inputs * outputs).map(|_| next()).collect();
        let bias: Vec<f32> = (0..outputs).map(|_| next()).collect();
        let simd = pulp::Arch::new();
        for m in 1..=20 {
            let x: Vec<f32> = (0..m * inputs).map(|_| next()).collect();
            let expected = naive(&weight, &bias, &x, m, inputs);
            for (precision, tolerance) in [(Precision::F32, 1e-5), (Precision::Int8, 0.05)] {
                let dense = Dense::new(&weight, bias.clone(), inputs, outputs, precision);
                let mut out = vec![f32::NAN; m * outputs];
                dense.forward(simd, &x, m, &mut out);
                // The same layer without vector instructions (the plain-arithmetic tiles).
                let mut plain = vec![f32::NAN; m * outputs];
                match &dense.weights {
                    DenseWeights::Int8(weights) => {
                        let forward = DenseForward { dense: &dense, weights, x: &x, m, out: &mut plain };
                        pulp::WithSimd::with_simd(forward, pulp::Scalar::new());
                    }
                    DenseWeights::F32(weights) => {
                        let forward = DenseForward { dense: &dense, weights, x: &x, m, out: &mut plain };
                        pulp::WithSimd::with_simd(forward, pulp::Scalar::new());
                    }
                }
                for ((got, plain), want) in out.iter().zip(&plain).zip(&expected) {
                    assert!((got - want).abs() < tolerance, "{precision:?}, {m} tokens: {got} vs {want}");
                    assert!(
                        (plain - want).abs() < tolerance,
                        "{precision:?}, {m} tokens, plain: {plain} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn exp_matches_the_standard_library() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (ours, std) = (exp(x), x.exp());
            assert!((ours - std).abs() <= 2e-7 * std, "exp({x}): {ours} vs {std}");
        }
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let mut v = vec![1.0, 3.0, 2.0, -1000.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[1] > v[2] && v[2] > v[0] && v[3] >= 0.0);
    }
}
