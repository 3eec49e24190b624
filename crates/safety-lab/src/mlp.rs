//! Fits the embedding head's classifier ([`onda_safety::embedding::Mlp`]): one hidden layer of ReLU
//! units over a sentence embedding, a weighted logistic loss, Adam, and early stopping on a tenth of the
//! examples held out. Written out rather than with candle's autograd so that it runs on one thread in a
//! fixed order: the same examples give the same bytes on any machine.

use onda_safety::embedding::{Mlp, dot};
use onda_safety::lexical::sigmoid;

/// One training example: a unit-length embedding, its label and its weight.
pub struct Example<'a> {
    pub embedding: &'a [f32],
    pub unsafe_: bool,
    pub weight: f32,
}

/// How the network is fitted. The defaults are scikit-learn's `MLPClassifier` with early stopping, the
/// setting the scratch experiment that chose it used (`docs/safety.md`, step 21).
#[derive(Clone, Debug)]
pub struct Settings {
    pub hidden: usize,
    pub learning_rate: f32,
    /// The L2 penalty, divided by the batch's size as scikit-learn does.
    pub l2: f32,
    pub batch: usize,
    pub max_epochs: usize,
    /// Epochs without a better held-out loss before stopping.
    pub patience: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hidden: 256,
            learning_rate: 1e-3,
            l2: 1e-3,
            batch: 200,
            max_epochs: 200,
            patience: 10,
            seed: 0,
        }
    }
}

/// A small deterministic generator (xorshift64*): the initial weights and the order of the examples.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Adam's moments for one block of parameters.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self { m: vec![0.0; n], v: vec![0.0; n] }
    }

    fn step(&mut self, params: &mut [f32], grads: &[f32], rate: f32, t: i32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        let (c1, c2) = (1.0 - B1.powi(t), 1.0 - B2.powi(t));
        for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= rate * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}

/// The weighted mean logistic loss of `mlp` on `examples`.
fn loss(mlp: &Mlp, examples: &[&Example<'_>]) -> f64 {
    let (mut total, mut weight) = (0.0f64, 0.0f64);
    for e in examples {
        let p = f64::from(sigmoid(mlp.logit(e.embedding))).clamp(1e-7, 1.0 - 1e-7);
        let l = if e.unsafe_ { -p.ln() } else { -(1.0 - p).ln() };
        total += f64::from(e.weight) * l;
        weight += f64::from(e.weight);
    }
    if weight > 0.0 { total / weight } else { 0.0 }
}

/// Fits the network on `examples` (all of one dimension). Prints one line per ten epochs to stderr.
pub fn fit(examples: &[Example<'_>], settings: &Settings) -> Result<Mlp, String> {
    let dimension = examples.first().ok_or("no examples")?.embedding.len();
    if examples.iter().any(|e| e.embedding.len() != dimension || !e.weight.is_finite() || e.weight < 0.0) {
        return Err("examples of different dimensions or with a bad weight".into());
    }
    let hidden = settings.hidden.max(1);
    let mut rng = Rng::new(settings.seed);
    // Glorot's uniform initialisation, as scikit-learn's (biases too).
    let limit1 = (6.0 / (dimension + hidden) as f32).sqrt();
    let limit2 = (6.0 / (hidden + 1) as f32).sqrt();
    let mut mlp = Mlp {
        dimension,
        hidden,
        w1: (0..hidden * dimension).map(|_| rng.symmetric() * limit1).collect(),
        b1: (0..hidden).map(|_| rng.symmetric() * limit1).collect(),
        w2: (0..hidden).map(|_| rng.symmetric() * limit2).collect(),
        b2: rng.symmetric() * limit2,
    };
    let mut order: Vec<usize> = (0..examples.len()).collect();
    rng.shuffle(&mut order);
    // A tenth held out to stop on; with fewer than twenty examples, all are trained on and stopping reads
    // the training loss.
    let hold = examples.len() >= 20;
    let held_out: Vec<&Example<'_>> =
        order.iter().enumerate().filter(|(n, _)| !hold || n % 10 == 0).map(|(_, &i)| &examples[i]).collect();
    let mut train: Vec<usize> =
        order.iter().enumerate().filter(|(n, _)| !hold || n % 10 != 0).map(|(_, &i)| i).collect();

    let (mut adam_w1, mut adam_b1, mut adam_w2, mut adam_b2) =
        (Adam::new(mlp.w1.len()), Adam::new(hidden), Adam::new(hidden), Adam::new(1));
    let mut grad_w1 = vec![0.0f32; mlp.w1.len()];
    let mut grad_b1 = vec![0.0f32; hidden];
    let mut grad_w2 = vec![0.0f32; hidden];
    let mut activations = vec![0.0f32; hidden];
    let mut best = (loss(&mlp, &held_out), mlp.clone());
    let mut since_best = 0;
    let mut t = 0;
    for epoch in 1..=settings.max_epochs {
        rng.shuffle(&mut train);
        for batch in train.chunks(settings.batch.max(1)) {
            grad_w1.fill(0.0);
            grad_b1.fill(0.0);
            grad_w2.fill(0.0);
            let mut grad_b2 = 0.0f32;
            let batch_weight: f32 = batch.iter().map(|&i| examples[i].weight).sum();
            if batch_weight <= 0.0 {
                continue;
            }
            for &i in batch {
                let e = &examples[i];
                let x = e.embedding;
                let mut logit = mlp.b2;
                for (j, (row, b)) in mlp.w1.chunks_exact(dimension).zip(&mlp.b1).enumerate() {
                    let h = (dot(row, x) + b).max(0.0);
                    activations[j] = h;
                    logit += mlp.w2[j] * h;
                }
                let target = if e.unsafe_ { 1.0 } else { 0.0 };
                let g = (sigmoid(logit) - target) * e.weight / batch_weight;
                grad_b2 += g;
                for j in 0..hidden {
                    if activations[j] <= 0.0 {
                        continue;
                    }
                    grad_w2[j] += g * activations[j];
                    let gh = g * mlp.w2[j];
                    grad_b1[j] += gh;
                    for (gw, xi) in grad_w1[j * dimension..(j + 1) * dimension].iter_mut().zip(x) {
                        *gw += gh * xi;
                    }
                }
            }
            let decay = settings.l2 / batch.len() as f32;
            for (g, w) in grad_w1.iter_mut().zip(&mlp.w1) {
                *g += decay * w;
            }
            for (g, w) in grad_w2.iter_mut().zip(&mlp.w2) {
                *g += decay * w;
            }
            t += 1;
            let rate = settings.learning_rate;
            adam_w1.step(&mut mlp.w1, &grad_w1, rate, t);
            adam_b1.step(&mut mlp.b1, &grad_b1, rate, t);
            adam_w2.step(&mut mlp.w2, &grad_w2, rate, t);
            let mut b2 = [mlp.b2];
            adam_b2.step(&mut b2, &[grad_b2], rate, t);
            mlp.b2 = b2[0];
        }
        let held_out_loss = loss(&mlp, &held_out);
        if held_out_loss < best.0 - 1e-4 {
            best = (held_out_loss, mlp.clone());
            since_best = 0;
        } else {
            since_best += 1;
        }
        if epoch % 10 == 0 || since_best >= settings.patience {
            eprintln!("classifier: epoch {epoch}, held-out loss {held_out_loss:.4} (best {:.4})", best.0);
        }
        if since_best >= settings.patience {
            break;
        }
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters on either side of a plane that does not pass through the origin.
    fn clusters() -> Vec<(Vec<f32>, bool)> {
        let mut rng = Rng::new(7);
        (0..400)
            .map(|i| {
                let unsafe_ = i % 2 == 0;
                let centre = if unsafe_ { [0.8, 0.2, 0.1] } else { [0.1, 0.3, 0.9] };
                (centre.iter().map(|c| c + 0.15 * rng.symmetric()).collect(), unsafe_)
            })
            .collect()
    }

    #[test]
    fn it_separates_two_clusters_and_is_deterministic() {
        let data = clusters();
        let examples: Vec<Example<'_>> =
            data.iter().map(|(x, y)| Example { embedding: x, unsafe_: *y, weight: 1.0 }).collect();
        let settings = Settings { hidden: 8, learning_rate: 0.01, max_epochs: 50, ..Settings::default() };
        let mlp = fit(&examples, &settings).expect("fit");
        let correct = data.iter().filter(|(x, y)| (mlp.logit(x) > 0.0) == *y).count();
        assert!(correct >= 396, "{correct} of 400");
        assert_eq!(fit(&examples, &settings).expect("fit again"), mlp);
    }

    #[test]
    fn weights_decide_which_side_an_ambiguous_point_falls() {
        let point = [0.5f32, 0.5, 0.5];
        let fitted = |unsafe_weight: f32| {
            let examples = [
                Example { embedding: &point, unsafe_: true, weight: unsafe_weight },
                Example { embedding: &point, unsafe_: false, weight: 1.0 },
            ];
            let settings = Settings {
                hidden: 2,
                learning_rate: 0.05,
                max_epochs: 200,
                patience: 200,
                ..Settings::default()
            };
            fit(&examples, &settings).expect("fit").logit(&point)
        };
        assert!(fitted(3.0) > 0.0);
        assert!(fitted(1.0 / 3.0) < 0.0);
    }

    #[test]
    fn bad_examples_are_errors() {
        assert!(fit(&[], &Settings::default()).is_err());
        let (a, b) = ([1.0f32, 0.0], [1.0f32]);
        let mixed = [
            Example { embedding: &a, unsafe_: true, weight: 1.0 },
            Example { embedding: &b, unsafe_: false, weight: 1.0 },
        ];
        assert!(fit(&mixed, &Settings::default()).is_err());
    }
}
