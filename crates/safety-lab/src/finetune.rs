//! Fine-tuning the top layers of the sentence encoder (all-MiniLM-L6-v2) with candle's autograd.
//!
//! The bottom layers stay frozen, so their output for every training text is computed once ([`Frozen`])
//! and each epoch runs (forward and backward) only the top layers and the head: on two cores a pass over
//! the whole encoder for every step would cost several times as much.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The model's hyper-parameters this code needs.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub eps: f64,
}

/// One transformer layer's parameters (BERT post-norm layout).
pub struct Layer {
    pub tensors: Vec<(String, Tensor)>,
}

impl Layer {
    fn get(&self, name: &str) -> &Tensor {
        &self.tensors.iter().find(|(n, _)| n == name).expect("every layer tensor is loaded").1
    }
}

/// The names of a layer's tensors, after `encoder.layer.{i}.`.
pub const LAYER_TENSORS: [&str; 16] = [
    "attention.self.query.weight",
    "attention.self.query.bias",
    "attention.self.key.weight",
    "attention.self.key.bias",
    "attention.self.value.weight",
    "attention.self.value.bias",
    "attention.output.dense.weight",
    "attention.output.dense.bias",
    "attention.output.LayerNorm.weight",
    "attention.output.LayerNorm.bias",
    "intermediate.dense.weight",
    "intermediate.dense.bias",
    "output.dense.weight",
    "output.dense.bias",
    "output.LayerNorm.weight",
    "output.LayerNorm.bias",
];

fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(x.matmul(&w.t()?)?.broadcast_add(b)?)
}

/// Layer norm from differentiable primitives (candle's fused one has no backward pass).
fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    Ok(normed.broadcast_mul(gamma)?.broadcast_add(beta)?)
}

impl Layer {
    /// `x`: (batch, tokens, hidden); `mask`: (batch, 1, 1, tokens), 0 for a real token and a large
    /// negative number for padding.
    pub fn forward(&self, shape: &Shape, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, tokens, hidden) = x.dims3()?;
        let head = hidden / shape.heads;
        let flat = x.reshape((batch * tokens, hidden))?;
        let split = |name: &str| -> Result<Tensor> {
            let w = self.get(&format!("attention.self.{name}.weight"));
            let b = self.get(&format!("attention.self.{name}.bias"));
            Ok(linear(&flat, w, b)?
                .reshape((batch, tokens, shape.heads, head))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (q, k, v) = (split("query")?, split("key")?, split("value")?);
        let scores =
            (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (head as f64).sqrt()))?.broadcast_add(mask)?;
        let attention = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context =
            attention.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((batch * tokens, hidden))?;
        let attended = (linear(
            &context,
            self.get("attention.output.dense.weight"),
            self.get("attention.output.dense.bias"),
        )? + &flat)?;
        let attended = layer_norm(
            &attended,
            self.get("attention.output.LayerNorm.weight"),
            self.get("attention.output.LayerNorm.bias"),
            shape.eps,
        )?;
        let inner =
            linear(&attended, self.get("intermediate.dense.weight"), self.get("intermediate.dense.bias"))?
                .gelu_erf()?;
        let out =
            (linear(&inner, self.get("output.dense.weight"), self.get("output.dense.bias"))? + &attended)?;
        let out = layer_norm(
            &out,
            self.get("output.LayerNorm.weight"),
            self.get("output.LayerNorm.bias"),
            shape.eps,
        )?;
        Ok(out.reshape((batch, tokens, hidden))?)
    }
}

/// The encoder's weights as loaded from `model.safetensors`.
pub struct Encoder {
    pub shape: Shape,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: (Tensor, Tensor),
    pub layers: Vec<Layer>,
}

impl Encoder {
    pub fn load(dir: &Path) -> Result<Self> {
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let get = |k: &str| config[k].as_u64().map(|v| v as usize).ok_or(format!("config.json: no {k}"));
        let shape = Shape {
            hidden: get("hidden_size")?,
            heads: get("num_attention_heads")?,
            layers: get("num_hidden_layers")?,
            eps: config["layer_norm_eps"].as_f64().unwrap_or(1e-12),
        };
        let mut tensors: HashMap<String, Tensor> =
            candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?
                .into_iter()
                .map(|(name, t)| (name.strip_prefix("bert.").map(str::to_owned).unwrap_or(name), t))
                .collect();
        let mut take = |name: &str| -> Result<Tensor> {
            Ok(tensors.remove(name).ok_or(format!("model.safetensors: no {name}"))?.to_dtype(DType::F32)?)
        };
        let word = take("embeddings.word_embeddings.weight")?;
        let position = take("embeddings.position_embeddings.weight")?;
        let token_type = take("embeddings.token_type_embeddings.weight")?.get(0)?;
        let norm = (take("embeddings.LayerNorm.weight")?, take("embeddings.LayerNorm.bias")?);
        let mut layers = Vec::new();
        for i in 0..shape.layers {
            let mut layer = Vec::new();
            for name in LAYER_TENSORS {
                layer.push((name.to_string(), take(&format!("encoder.layer.{i}.{name}"))?));
            }
            layers.push(Layer { tensors: layer });
        }
        Ok(Encoder { shape, word, position, token_type, norm, layers })
    }

    /// The output of the embeddings and the first `layers` layers for a batch of token id lists, one
    /// (tokens, hidden) row-major matrix per text (padding removed).
    pub fn bottom(&self, ids: &[&[u32]], layers: usize) -> Result<Vec<Vec<f32>>> {
        let longest = ids.iter().map(|t| t.len()).max().unwrap_or(0);
        let (input, mask) = self.embed_tokens(ids, longest)?;
        let mut x = input;
        for layer in &self.layers[..layers] {
            x = layer.forward(&self.shape, &x, &mask)?;
        }
        let mut out = Vec::with_capacity(ids.len());
        for (i, t) in ids.iter().enumerate() {
            out.push(x.get(i)?.narrow(0, 0, t.len())?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    fn embed_tokens(&self, ids: &[&[u32]], longest: usize) -> Result<(Tensor, Tensor)> {
        let batch = ids.len();
        let mut flat = Vec::with_capacity(batch * longest);
        let mut mask = Vec::with_capacity(batch * longest);
        for t in ids {
            flat.extend_from_slice(t);
            flat.extend(std::iter::repeat_n(0, longest - t.len()));
            mask.extend(std::iter::repeat_n(0f32, t.len()));
            mask.extend(std::iter::repeat_n(-1e4f32, longest - t.len()));
        }
        let ids = Tensor::from_vec(flat, batch * longest, &Device::Cpu)?;
        let words = self.word.index_select(&ids, 0)?.reshape((batch, longest, self.shape.hidden))?;
        let positions = self.position.narrow(0, 0, longest)?;
        let x = words.broadcast_add(&positions)?.broadcast_add(&self.token_type)?;
        let x = layer_norm(&x, &self.norm.0, &self.norm.1, self.shape.eps)?;
        let mask = Tensor::from_vec(mask, (batch, 1, 1, longest), &Device::Cpu)?;
        Ok((x, mask))
    }
}

/// The trainable top: copies of the top layers' tensors as variables, and a linear head over the
/// normalised mean of the tokens.
pub struct Top {
    pub shape: Shape,
    pub layers: Vec<Layer>,
    pub head_weight: Var,
    pub head_bias: Var,
    pub layer_vars: Vec<Var>,
}

impl Top {
    pub fn new(encoder: &Encoder, frozen: usize, outputs: usize) -> Result<Self> {
        let mut layers = Vec::new();
        let mut layer_vars = Vec::new();
        for layer in &encoder.layers[frozen..] {
            let mut tensors = Vec::new();
            for (name, t) in &layer.tensors {
                let var = Var::from_tensor(t)?;
                tensors.push((name.clone(), var.as_tensor().clone()));
                layer_vars.push(var);
            }
            layers.push(Layer { tensors });
        }
        let hidden = encoder.shape.hidden;
        Ok(Top {
            shape: encoder.shape,
            layers,
            head_weight: Var::zeros((outputs, hidden), DType::F32, &Device::Cpu)?,
            head_bias: Var::zeros(outputs, DType::F32, &Device::Cpu)?,
            layer_vars,
        })
    }

    /// The unit-length sentence embedding and the head's logits for a batch of the bottom's outputs.
    pub fn forward(&self, bottoms: &[&[f32]]) -> Result<(Tensor, Tensor)> {
        let hidden = self.shape.hidden;
        let batch = bottoms.len();
        let longest = bottoms.iter().map(|b| b.len() / hidden).max().unwrap_or(0);
        let mut flat = Vec::with_capacity(batch * longest * hidden);
        let mut mask = Vec::with_capacity(batch * longest);
        let mut keep = Vec::with_capacity(batch * longest);
        for b in bottoms {
            let tokens = b.len() / hidden;
            flat.extend_from_slice(b);
            flat.extend(std::iter::repeat_n(0f32, (longest - tokens) * hidden));
            mask.extend(std::iter::repeat_n(0f32, tokens));
            mask.extend(std::iter::repeat_n(-1e4f32, longest - tokens));
            keep.extend(std::iter::repeat_n(1f32, tokens));
            keep.extend(std::iter::repeat_n(0f32, longest - tokens));
        }
        let mut x = Tensor::from_vec(flat, (batch, longest, hidden), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (batch, 1, 1, longest), &Device::Cpu)?;
        for layer in &self.layers {
            x = layer.forward(&self.shape, &x, &mask)?;
        }
        let keep = Tensor::from_vec(keep, (batch, longest, 1), &Device::Cpu)?;
        let summed = x.broadcast_mul(&keep)?.sum(1)?;
        let mean = summed.broadcast_div(&keep.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let embedding = mean.broadcast_div(&norm)?;
        let logits = linear(&embedding, self.head_weight.as_tensor(), self.head_bias.as_tensor())?;
        Ok((embedding, logits))
    }
}

impl Top {
    /// Writes the trained layers (by their names in the model's `model.safetensors`, `frozen` being the
    /// index of the first) and the head (`head.weight`, `head.bias`) as f32 safetensors.
    pub fn save(&self, frozen: usize, path: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (name, t) in &layer.tensors {
                tensors.insert(format!("encoder.layer.{}.{name}", frozen + i), t.detach());
            }
        }
        tensors.insert("head.weight".to_string(), self.head_weight.as_tensor().detach());
        tensors.insert("head.bias".to_string(), self.head_bias.as_tensor().detach());
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }
}

/// Weighted binary cross-entropy of `logits` against `targets`, both (batch, outputs); `weights` the
/// same shape (0 where a head has no label). Summed and divided by the batch size.
pub fn weighted_bce(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Result<Tensor> {
    // log(1 + e^z) - y z, computed stably as max(z, 0) + log(1 + e^-|z|) - y z.
    let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let loss = (softplus - (targets * logits)?)?;
    let batch = logits.dims()[0] as f64;
    Ok(((loss * weights)?.sum_all()? / batch)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny encoder with deterministic pseudo-random weights: hidden 8, 2 heads, 2 layers.
    fn tiny_encoder() -> Encoder {
        let shape = Shape { hidden: 8, heads: 2, layers: 2, eps: 1e-12 };
        let mut seed = 1u32;
        let mut values = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect()
        };
        let mut tensor = |dims: &[usize]| {
            Tensor::from_vec(values(dims.iter().product()), dims, &Device::Cpu).expect("a tensor")
        };
        let layers = (0..shape.layers)
            .map(|_| Layer {
                tensors: LAYER_TENSORS
                    .iter()
                    .map(|name| {
                        let dims: Vec<usize> = match *name {
                            n if n.contains("LayerNorm") => vec![8],
                            "intermediate.dense.weight" => vec![16, 8],
                            "intermediate.dense.bias" => vec![16],
                            "output.dense.weight" => vec![8, 16],
                            n if n.ends_with("weight") => vec![8, 8],
                            _ => vec![8],
                        };
                        (name.to_string(), tensor(&dims))
                    })
                    .collect(),
            })
            .collect();
        Encoder {
            shape,
            word: tensor(&[20, 8]),
            position: tensor(&[16, 8]),
            token_type: tensor(&[8]),
            norm: (tensor(&[8]), tensor(&[8])),
            layers,
        }
    }

    #[test]
    fn the_layer_norm_matches_candles_fused_one() {
        let x = Tensor::from_vec((0..24).map(|i| (i as f32).sin()).collect::<Vec<_>>(), (3, 8), &Device::Cpu)
            .expect("x");
        let gamma =
            Tensor::from_vec((0..8).map(|i| 1.0 + i as f32 / 10.0).collect::<Vec<_>>(), 8, &Device::Cpu)
                .expect("gamma");
        let beta = Tensor::from_vec((0..8).map(|i| i as f32 / 20.0).collect::<Vec<_>>(), 8, &Device::Cpu)
            .expect("beta");
        let ours = layer_norm(&x, &gamma, &beta, 1e-5).expect("ours").to_vec2::<f32>().expect("values");
        let fused = candle_nn::ops::layer_norm(&x, &gamma, &beta, 1e-5)
            .expect("fused")
            .to_vec2::<f32>()
            .expect("values");
        for (a, b) in ours.iter().flatten().zip(fused.iter().flatten()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn the_loss_is_the_weighted_cross_entropy() {
        let logits = Tensor::from_vec(vec![2.0f32, -1.0], (1, 2), &Device::Cpu).expect("logits");
        let targets = Tensor::from_vec(vec![1.0f32, 1.0], (1, 2), &Device::Cpu).expect("targets");
        let weights = Tensor::from_vec(vec![1.0f32, 0.5], (1, 2), &Device::Cpu).expect("weights");
        let loss =
            weighted_bce(&logits, &targets, &weights).expect("loss").to_scalar::<f32>().expect("scalar");
        let expected = -(1.0 / (1.0 + (-2.0f32).exp())).ln() - 0.5 * (1.0 / (1.0 + 1.0f32.exp())).ln();
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn padding_changes_nothing_and_training_steps_lower_the_loss() {
        let encoder = tiny_encoder();
        let short: &[u32] = &[1, 5, 2];
        let long: &[u32] = &[1, 7, 9, 11, 3, 2];
        // A text's bottom output is the same alone or padded in a batch with a longer one.
        let alone = encoder.bottom(&[short], 1).expect("alone");
        let batched = encoder.bottom(&[short, long], 1).expect("batched");
        for (a, b) in alone[0].iter().zip(&batched[0]) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        let top = Top::new(&encoder, 1, 1).expect("top");
        let inputs: Vec<&[f32]> = batched.iter().map(Vec::as_slice).collect();
        let targets = Tensor::from_vec(vec![1.0f32, 0.0], (2, 1), &Device::Cpu).expect("targets");
        let weights = Tensor::ones((2, 1), DType::F32, &Device::Cpu).expect("weights");
        let mut vars = top.layer_vars.clone();
        vars.extend([top.head_weight.clone(), top.head_bias.clone()]);
        let mut optimizer = candle_nn::AdamW::new_lr(vars, 0.05).expect("optimizer");
        let loss_now = || -> f32 {
            let (_, logits) = top.forward(&inputs).expect("forward");
            weighted_bce(&logits, &targets, &weights).expect("loss").to_scalar::<f32>().expect("scalar")
        };
        let before = loss_now();
        let first_query = top.layer_vars[0].as_tensor().to_vec2::<f32>().expect("values");
        for _ in 0..60 {
            let (_, logits) = top.forward(&inputs).expect("forward");
            let loss = weighted_bce(&logits, &targets, &weights).expect("loss");
            candle_nn::Optimizer::backward_step(&mut optimizer, &loss).expect("step");
        }
        let after = loss_now();
        assert!(after < before * 0.5, "the loss went from {before} to {after}");
        // The gradient reaches the layers, not only the head.
        assert_ne!(top.layer_vars[0].as_tensor().to_vec2::<f32>().expect("values"), first_query);
    }
}
