//! A BERT encoder (all-MiniLM-L6-v2's architecture) written for one short text at a time on the CPU.
//!
//! candle's `BertModel` spent most of a short message's time outside the matrix products (a kid's
//! 8-token message cost 7 ms, of which the products are under 2): every small operation allocates a
//! tensor and wakes a thread pool, and its GELU evaluates `erf` one element at a time. This encoder keeps
//! the activations in a few reused buffers, fuses the bias, GELU, softmax and layer norms into plain loops
//! the compiler vectorises, and multiplies with faer on the calling thread (the server runs one verdict per
//! core, so a thread pool would only steal the other core). Its output matches candle's to float rounding
//! (a test compares them), so the prototypes the safety head was fitted with stay valid.
//!
//! Activations are column-major, one column per feature (`m` tokens each): the layout faer multiplies
//! fastest here, and it makes a head's query, key and value a contiguous block of columns.

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

/// A dense layer `y = x·Wᵀ + b`. `weight` keeps PyTorch's `[out, in]` row-major order, which is `Wᵀ`
/// (in × out) column-major: what the product reads.
struct Dense {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// `out` (m × outputs) = `x` (m × inputs) · Wᵀ + b, all column-major.
    fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let x = MatRef::from_column_major_slice(&x[..m * self.inputs], m, self.inputs);
        let weight_t = MatRef::from_column_major_slice(&self.weight, self.inputs, self.outputs);
        let out = &mut out[..m * self.outputs];
        for (column, &b) in out.chunks_exact_mut(m).zip(&self.bias) {
            column.fill(b);
        }
        let y = MatMut::from_column_major_slice_mut(out, m, self.outputs);
        faer::linalg::matmul::matmul(y, Accum::Add, x, weight_t, 1.0f32, Par::Seq);
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

fn dense(
    tensors: &mut HashMap<String, Tensor>,
    prefix: &str,
    inputs: usize,
    outputs: usize,
) -> Result<Dense> {
    Ok(Dense {
        weight: take(tensors, &format!("{prefix}.weight"), &[outputs, inputs])?,
        bias: take(tensors, &format!("{prefix}.bias"), &[outputs])?,
        inputs,
        outputs,
    })
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
    /// Reads the weights of a BERT `model.safetensors` (with or without the `bert.` prefix).
    pub fn from_safetensors(config: BertConfig, weights: &[u8]) -> Result<Self> {
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
            let query = dense(&mut tensors, &format!("{p}.attention.self.query"), h, h)?;
            let key = dense(&mut tensors, &format!("{p}.attention.self.key"), h, h)?;
            let value = dense(&mut tensors, &format!("{p}.attention.self.value"), h, h)?;
            let qkv = Dense {
                weight: [query.weight, key.weight, value.weight].concat(),
                bias: [query.bias, key.bias, value.bias].concat(),
                inputs: h,
                outputs: 3 * h,
            };
            layers.push(Layer {
                qkv,
                attention_out: dense(&mut tensors, &format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: layer_norm(&mut tensors, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: dense(
                    &mut tensors,
                    &format!("{p}.intermediate.dense"),
                    h,
                    config.intermediate_size,
                )?,
                output: dense(&mut tensors, &format!("{p}.output.dense"), config.intermediate_size, h)?,
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

    /// Loads `config.json` and `model.safetensors` from `dir`.
    pub fn load(config_path: &Path, weights_path: &Path) -> Result<Self> {
        let config_text = std::fs::read_to_string(config_path).map_err(|e| Error::io(config_path, e))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|e| Error::Invalid(format!("{}: {e}", config_path.display())))?;
        let weights = std::fs::read(weights_path).map_err(|e| Error::io(weights_path, e))?;
        Self::from_safetensors(config, &weights)
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
            layer.qkv.forward(&s.hidden, m, &mut s.qkv);
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
                    for column in scores.chunks_exact_mut(n) {
                        softmax(column);
                    }
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
            layer.attention_out.forward(&s.context, m, &mut s.attention);
            add(&mut s.attention[..m * h], &s.hidden[..m * h]);
            layer.attention_norm.forward(&mut s.attention, m, &mut s.mean, &mut s.var);

            layer.intermediate.forward(&s.attention, m, &mut s.intermediate);
            self.simd.dispatch(GeluInPlace(&mut s.intermediate[..m * self.config.intermediate_size]));
            layer.output.forward(&s.intermediate, m, &mut s.hidden);
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

fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inverse = 1.0 / sum;
    values.iter_mut().for_each(|v| *v *= inverse);
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

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let mut v = vec![1.0, 3.0, 2.0, -1000.0];
        softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[1] > v[2] && v[2] > v[0] && v[3] >= 0.0);
    }
}
