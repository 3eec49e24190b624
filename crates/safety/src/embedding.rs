//! Layer 2's embedding head: a sentence embedding (all-MiniLM-L6-v2, computed outside this crate behind
//! [`TextEmbedder`]) compared with labeled prototypes the project wrote. Pure arithmetic, no IO.
//!
//! The signal of a message is, for each prototype set (adults' register and children's), the mean cosine
//! similarity of its `k` nearest unsafe prototypes minus `safe_weight` times that of its `k` nearest safe
//! ones, summed over the sets. The category is the weighted vote of the nearest unsafe prototypes. A small
//! neural network fitted on the same prototypes and the public `train` sets ([`Classifier`]) reads the
//! same embedding; where the head has one, its rank joins the signal's in the overall unsafe score (which
//! ranks, and sets a level through the combined thresholds), while the head's own thresholds stay on the
//! neighbours' signal.
//! Calibration, fitted by `safety-fit-embedding` on validation data that is never eval-only
//! (`docs/safety.md` says which):
//! - three thresholds on the signal, where precision reached 0.75, 0.91 and 0.97, mapped onto the
//!   policy's mild, moderate and strong scores, so the documented policy table turns them into levels;
//! - the empirical distributions of the signal and of the rules' score on that data, so the overall unsafe
//!   score is a weighted mean of the two ranks (whatever each signal's scale).
//!
//! A long message is also scored passage by passage ([`passages`]); its signal is the strongest.

use crate::bytes::{Reader, Truncated};
use crate::engine::{LearnedScorer, LearnedScores, ScorerError};
use crate::policy;
use crate::types::{Category, CategoryScores, Context, Role};

/// Computes sentence embeddings (unit length, one per text, in order). Implemented outside this crate
/// (`onda-models`), so the engine stays free of IO.
pub trait TextEmbedder: Send + Sync {
    fn dimension(&self) -> usize;
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// The built-in head, fitted by `cargo run -p onda-safety-lab --release --bin safety-fit-embedding`.
const BUILTIN: &[u8] = include_bytes!("../model/embedding.bin");
const MAGIC: &[u8; 8] = b"ONDAEMB4";
const SAFE_LABEL: u8 = u8::MAX;
/// The label byte's flag for an example written as the assistant.
const ASSISTANT_FLAG: u8 = 0x80;

/// Why a head file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the embedding head is malformed: {0}")]
    Malformed(&'static str),
}

impl From<Truncated> for HeadError {
    fn from(_: Truncated) -> Self {
        HeadError::Malformed("truncated")
    }
}

/// A labeled prototype set: unit vectors, each unsafe in one category or safe (None), and whether it was
/// written as the assistant.
#[derive(Clone, Debug, Default)]
pub struct Prototypes {
    pub vectors: Vec<Vec<f32>>,
    pub labels: Vec<Option<Category>>,
    /// An unsafe assistant example ("what school do you go to?") is only unsafe from the assistant: it is
    /// not compared with a child's messages.
    pub assistant: Vec<bool>,
}

/// An empirical distribution, kept as its 101 percentiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distribution(Vec<f32>);

impl Distribution {
    /// The percentiles of `values` (NaN ignored).
    pub fn of(values: &[f32]) -> Self {
        let mut sorted: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f32::total_cmp);
        if sorted.is_empty() {
            return Self(Vec::new());
        }
        let last = sorted.len() - 1;
        Self((0..=100).map(|p| sorted[(p * last + 50) / 100]).collect())
    }

    /// The share of the distribution below `x`, in [0, 1], interpolated between percentiles; a value tied
    /// with several percentiles gets the middle of them (as a rank average would).
    pub fn rank(&self, x: f32) -> f32 {
        let q = &self.0;
        if q.len() < 2 || x.is_nan() {
            return if x.is_nan() { 1.0 } else { 0.5 };
        }
        let top = (q.len() - 1) as f32;
        let below = q.partition_point(|&v| v < x);
        let not_above = q.partition_point(|&v| v <= x);
        if not_above > below {
            // Ties: the middle of the tied percentiles.
            return (below + not_above - 1) as f32 / 2.0 / top;
        }
        if below == 0 {
            return 0.0;
        }
        if below == q.len() {
            return 1.0;
        }
        let (lo, hi) = (q[below - 1], q[below]);
        let within = if hi > lo { (x - lo) / (hi - lo) } else { 0.5 };
        ((below - 1) as f32 + within) / top
    }
}

/// The fitted head: prototypes and calibration.
#[derive(Clone, Debug)]
pub struct EmbeddingHead {
    pub dimension: usize,
    /// How many neighbours are averaged.
    pub k: usize,
    /// How much the nearest safe prototypes count against the nearest unsafe ones.
    pub safe_weight: f32,
    /// The prototype sets, as the search reads them (see [`SearchSet`]).
    sets: Vec<SearchSet>,
    /// The signal where precision reached 0.75, 0.91 and 0.97 on the validation data.
    pub thresholds: [f32; 3],
    /// The overall unsafe score ([`EmbeddingHead::combine`]) where precision reached the redirect
    /// precision (`safety-fit-embedding` says which), 0.90 and 0.97 on the validation data: the two layers'
    /// evidence together ranks better than either alone, so it may raise the level of a message neither
    /// would flag on its own (see [`EmbeddingHead::combined_policy_score`] and
    /// [`EmbeddingHead::combined_redirect`]).
    pub combined_thresholds: [f32; 3],
    /// The signal's distribution on the validation data.
    pub signal_distribution: Distribution,
    /// The rules' score (`Verdict::unsafe_score` without layer 2) on the validation data.
    pub rules_distribution: Distribution,
    /// The classifier read beside the neighbours, if the head has one.
    pub classifier: Option<Classifier>,
}

/// A network of one hidden layer (ReLU) over a sentence embedding, giving the logit of "unsafe".
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub dimension: usize,
    pub hidden: usize,
    /// The hidden layer's weights, one row of `dimension` per hidden unit.
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// The output's weight per hidden unit.
    pub w2: Vec<f32>,
    pub b2: f32,
}

impl Mlp {
    /// The logit of "unsafe" for one embedding of the network's dimension.
    pub fn logit(&self, x: &[f32]) -> f32 {
        let mut out = self.b2;
        for ((row, b), w) in self.w1.chunks_exact(self.dimension).zip(&self.b1).zip(&self.w2) {
            let h = dot(row, x) + b;
            if h > 0.0 {
                out += w * h;
            }
        }
        out
    }
}

/// The dot product of two vectors in sixteen independent lanes (see [`dot_i8`]).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut sums = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The classifier beside the neighbours. The neighbours read a message by the few examples nearest to
/// it, which a new phrasing may not be near; a network fitted on every example reads the directions they
/// share, and on its own ranks the adults' sets worse. Their ranks, each in its distribution on the
/// validation data, are mixed into the learned layer's rank ([`EmbeddingHead::rank`];
/// `safety-fit-embedding` says how the weight was chosen). It sets no level by a threshold of its own: mixed
/// into the neighbours' signal, it pulled some disclosures of abuse under the thresholds that the
/// neighbours alone had reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Classifier {
    pub mlp: Mlp,
    /// The classifier's rank's weight in the learned rank; the neighbours' rank has the rest.
    pub weight: f32,
    /// The classifier's logit on the validation data.
    pub logit_distribution: Distribution,
}

/// What the head says about one embedding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signal {
    /// The neighbours' signal: higher is more unsafe; calibrated by the head's thresholds and distribution.
    pub value: f32,
    /// The classifier's logit, where the head has one.
    pub logit: Option<f32>,
    /// The category most of the nearest unsafe prototypes belong to.
    pub category: Option<Category>,
}

/// A prototype set as the head keeps it and the nearest-neighbour search reads it: each vector's 8-bit
/// codes (the head file's quantisation, one scale per vector), one vector after another, with the labels
/// of [`Prototypes`]. A query reads a quarter of the bytes of 32-bit vectors, in one contiguous block:
/// the search reads every prototype for every message (some 8,000 of them), so its time is the time to
/// read them.
#[derive(Clone, Debug, Default)]
struct SearchSet {
    codes: Vec<i8>,
    scales: Vec<f32>,
    labels: Vec<Option<Category>>,
    assistant: Vec<bool>,
}

impl SearchSet {
    fn of(set: &Prototypes, dimension: usize) -> Self {
        let mut search = Self {
            codes: Vec::with_capacity(set.vectors.len() * dimension),
            scales: Vec::with_capacity(set.vectors.len()),
            labels: set.labels.clone(),
            assistant: set.assistant.clone(),
        };
        for vector in &set.vectors {
            let (scale, codes) = quantize(vector);
            search.scales.push(scale);
            search.codes.extend(codes);
        }
        search
    }

    /// The cosine similarity of every prototype with a unit-length `query`, in order. Compiled for the
    /// best vector unit the CPU has, chosen when it runs (widening 8-bit codes takes instructions the
    /// baseline x86-64 lacks).
    fn similarities(&self, query: &[f32]) -> Vec<f32> {
        struct All<'a> {
            set: &'a SearchSet,
            query: &'a [f32],
        }
        impl pulp::WithSimd for All<'_> {
            type Output = Vec<f32>;
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _: S) -> Vec<f32> {
                // A plain loop: an iterator's `collect` is a function of its own, which would be
                // compiled without the vector unit's features.
                let dimension = self.query.len().max(1);
                let mut out = Vec::with_capacity(self.set.scales.len());
                for (codes, scale) in self.set.codes.chunks_exact(dimension).zip(&self.set.scales) {
                    out.push(dot_i8(codes, self.query) * scale);
                }
                out
            }
        }
        pulp::Arch::new().dispatch(All { set: self, query })
    }
}

/// A vector's 8-bit codes and their scale (the largest magnitude maps to 127).
fn quantize(vector: &[f32]) -> (f32, impl Iterator<Item = i8> + '_) {
    let max = vector.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    (scale, vector.iter().map(move |v| (v / scale).round().clamp(-127.0, 127.0) as i8))
}

/// The dot product of 8-bit codes with a vector, summed in sixteen independent lanes: a single running
/// sum is a chain the compiler may not reorder, so it would run one multiply at a time; lanes let it use
/// the vector unit. Inlined into [`SearchSet::similarities`], which compiles it for the CPU's vector unit.
#[inline(always)]
fn dot_i8(codes: &[i8], x: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut sums = [0.0f32; LANES];
    let (c_chunks, x_chunks) = (codes.chunks_exact(LANES), x.chunks_exact(LANES));
    let tail: f32 =
        c_chunks.remainder().iter().zip(x_chunks.remainder()).map(|(&c, &v)| f32::from(c) * v).sum();
    for (c, v) in c_chunks.zip(x_chunks) {
        for i in 0..LANES {
            sums[i] += f32::from(c[i]) * v[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The mean of the `k` largest values (all of them when fewer).
fn top_mean(values: &mut [f32], k: usize) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let k = k.clamp(1, values.len());
    let split = values.len() - k;
    values.select_nth_unstable_by(split, f32::total_cmp);
    values[split..].iter().sum::<f32>() / k as f32
}

/// How many words make a passage of a long message (see [`passages`]).
const PASSAGE_WORDS: usize = 40;

/// The weight of the embedding signal's rank in the overall unsafe score (the rules' rank has the rest).
/// Chosen on the dev set toxicchat_train (AUPRC 0.709 / 0.724 / 0.731 / 0.731 at 0.5 / 0.6 / 0.7 / 0.8).
const SIGNAL_WEIGHT: f32 = 0.7;

/// The passages of a long message (more than one and a half passages of words), each embedded and scored
/// on its own besides the whole: a sentence embedding of a long post is an average that dilutes the one
/// paragraph that matters, and the model reads at most 256 tokens. Sentences (ending in `.`, `!` or `?`
/// before a space, or at a line break) are gathered into passages of about [`PASSAGE_WORDS`] words; a
/// longer sentence is cut. Empty for a short message (every chat message a child types).
pub fn passages(text: &str) -> Vec<String> {
    let target = PASSAGE_WORDS;
    if text.split_whitespace().count() <= target * 3 / 2 {
        return Vec::new();
    }
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let ends = c == '\n' || (c.is_whitespace() && matches!(prev, Some('.' | '!' | '?')));
        if ends {
            sentences.push(&text[start..i]);
            start = i + c.len_utf8();
        }
        prev = Some(c);
    }
    sentences.push(&text[start..]);
    let mut out: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for sentence in sentences {
        let mut words: Vec<&str> = sentence.split_whitespace().collect();
        while words.len() > target * 3 / 2 {
            if !current.is_empty() {
                out.push(current.join(" "));
                current.clear();
            }
            out.push(words[..target].join(" "));
            words.drain(..target);
        }
        current.extend(words);
        if current.len() >= target {
            out.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        match out.last_mut() {
            Some(last) if current.len() < target / 2 => {
                last.push(' ');
                last.push_str(&current.join(" "));
            }
            _ => out.push(current.join(" ")),
        }
    }
    out
}

/// What the scorer embeds for a message: the text as the embedder reads it
/// ([`normalize_for_embedding`](crate::normalize::normalize_for_embedding), trimmed), then its
/// [`passages`]. Empty for a text with nothing to read.
pub fn embedding_inputs(text: &str) -> Vec<String> {
    inputs_of_reading(&crate::normalize::normalize_for_embedding(text))
}

/// [`embedding_inputs`] of a message already read as the embedder reads it.
fn inputs_of_reading(read: &str) -> Vec<String> {
    let read = read.trim().to_string();
    if read.is_empty() {
        return Vec::new();
    }
    let passages = passages(&read);
    let mut inputs = Vec::with_capacity(1 + passages.len());
    inputs.push(read);
    inputs.extend(passages);
    inputs
}

impl EmbeddingHead {
    /// A head over `sets` of prototypes, not yet calibrated (thresholds that never fire, empty
    /// distributions): the fitting tool sets the calibration from the head's own signals.
    pub fn new(dimension: usize, k: usize, safe_weight: f32, sets: &[Prototypes]) -> Self {
        Self::over(dimension, k, safe_weight, sets.iter().map(|set| SearchSet::of(set, dimension)).collect())
    }

    fn over(dimension: usize, k: usize, safe_weight: f32, sets: Vec<SearchSet>) -> Self {
        Self {
            dimension,
            k,
            safe_weight,
            sets,
            thresholds: [f32::INFINITY; 3],
            combined_thresholds: [f32::INFINITY; 3],
            signal_distribution: Distribution::default(),
            rules_distribution: Distribution::default(),
            classifier: None,
        }
    }

    /// The head that ships with Onda.
    pub fn builtin() -> Result<Self, HeadError> {
        Self::from_bytes(BUILTIN)
    }

    /// The signal of one unit-length embedding of a message written by `role`.
    pub fn signal(&self, embedding: &[f32], role: Role) -> Signal {
        let mut value = 0.0;
        let mut votes = [0.0f32; Category::ALL.len()];
        for set in &self.sets {
            let mut safe_sims = Vec::with_capacity(set.labels.len());
            let mut unsafe_sims: Vec<(f32, Category)> = Vec::with_capacity(set.labels.len());
            let sims = set.similarities(embedding);
            for ((sim, label), &assistant) in sims.into_iter().zip(&set.labels).zip(&set.assistant) {
                match label {
                    Some(_) if assistant && role == Role::Child => {}
                    Some(c) => unsafe_sims.push((sim, *c)),
                    None => safe_sims.push(sim),
                }
            }
            // The nearest unsafe examples give both the signal and the category vote.
            let k = self.k.min(unsafe_sims.len());
            let split = unsafe_sims.len() - k;
            if k > 0 {
                unsafe_sims.select_nth_unstable_by(split, |a, b| a.0.total_cmp(&b.0));
            }
            let nearest = &unsafe_sims[split..];
            let unsafe_mean =
                if k > 0 { nearest.iter().map(|(sim, _)| sim).sum::<f32>() / k as f32 } else { 0.0 };
            value += unsafe_mean - self.safe_weight * top_mean(&mut safe_sims, self.k);
            for (sim, c) in nearest {
                votes[c.index()] += sim.max(0.0);
            }
        }
        let category = votes
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| Category::ALL[i]);
        let logit = self.classifier.as_ref().map(|c| c.mlp.logit(embedding));
        Signal { value, logit, category }
    }

    /// The learned layer's rank of a signal in [0, 1]: the neighbours' signal's rank in its validation
    /// distribution, mixed with the classifier's where the head has one.
    pub fn rank(&self, signal: Signal) -> f32 {
        let near = self.signal_distribution.rank(signal.value);
        match (&self.classifier, signal.logit) {
            (Some(c), Some(logit)) => (1.0 - c.weight) * near + c.weight * c.logit_distribution.rank(logit),
            _ => near,
        }
    }

    /// The signal mapped onto the policy's scale: the three precision thresholds become the mild /
    /// moderate / strong scores, interpolated between them.
    pub fn policy_score(&self, signal: f32) -> f32 {
        let [t_mild, t_moderate, t_strong] = self.thresholds;
        let points = [(t_mild, policy::MILD), (t_moderate, policy::MODERATE), (t_strong, policy::STRONG)];
        if signal < t_mild {
            // Below the first threshold: under mild, never a level.
            return (policy::MILD * 0.9 * (1.0 - (t_mild - signal).clamp(0.0, 1.0))).max(0.0);
        }
        for pair in points.windows(2) {
            let ((a, sa), (b, sb)) = (pair[0], pair[1]);
            if signal < b {
                let t = if b > a { (signal - a) / (b - a) } else { 1.0 };
                return sa + t * (sb - sa);
            }
        }
        let headroom = (signal - t_strong).clamp(0.0, 0.2) / 0.2;
        policy::STRONG + headroom * (1.0 - policy::STRONG) * 0.5
    }

    /// The strongest signal of several embeddings of one message (the whole and its [`passages`]): the
    /// neighbours' strongest with its category, and the classifier's strongest logit.
    pub fn strongest_signal(&self, embeddings: &[Vec<f32>], role: Role) -> Signal {
        let signals: Vec<Signal> = embeddings.iter().map(|e| self.signal(e, role)).collect();
        let logit = signals.iter().filter_map(|s| s.logit).reduce(f32::max);
        signals
            .into_iter()
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .map(|strongest| Signal { logit, ..strongest })
            .unwrap_or(Signal { value: f32::MIN, logit: None, category: None })
    }

    /// The head's verdict on one embedding: the category's score on the policy's scale and the signal's
    /// rank in its validation distribution.
    pub fn scores(&self, embedding: &[f32], role: Role) -> LearnedScores {
        self.scores_of(self.signal(embedding, role))
    }

    /// The verdict of a signal: see [`EmbeddingHead::scores`].
    pub fn scores_of(&self, signal: Signal) -> LearnedScores {
        let mut categories = CategoryScores::default();
        // Personal information is the PII detectors' to find: they give the spans to redact, and "i go to
        // school" only sounds like "i go to lincoln elementary, room 4".
        if let Some(c) = signal.category.filter(|c| *c != Category::Pii) {
            categories.set(c, self.policy_score(signal.value));
        }
        LearnedScores { categories, overall: Some(self.rank(signal)), category: signal.category }
    }

    /// The overall unsafe score: the weighted mean of the rules' rank and the learned rank
    /// ([`EmbeddingHead::rank`], [`SIGNAL_WEIGHT`]).
    pub fn combine(&self, rules_score: f32, signal_rank: f32) -> f32 {
        ((1.0 - SIGNAL_WEIGHT) * self.rules_distribution.rank(rules_score) + SIGNAL_WEIGHT * signal_rank)
            .clamp(0.0, 1.0)
    }

    /// The overall unsafe score mapped onto the policy's scale: the moderate score at the first combined
    /// threshold, rising to the strong score at the second; None below the first.
    pub fn combined_policy_score(&self, combined: f32) -> Option<f32> {
        let [_, t_moderate, t_strong] = self.combined_thresholds;
        if combined.is_nan() || combined < t_moderate {
            return None;
        }
        if combined >= t_strong {
            return Some(policy::STRONG);
        }
        let t = if t_strong > t_moderate { (combined - t_moderate) / (t_strong - t_moderate) } else { 1.0 };
        // Just under the strong score until the second threshold is reached.
        Some((policy::MODERATE + t * (policy::STRONG - policy::MODERATE)).min(policy::STRONG - 1e-3))
    }

    /// Whether the overall unsafe score reaches the first combined threshold: concerning enough for a
    /// gentle redirect of a child's message (level 2), never more on its own.
    pub fn combined_redirect(&self, combined: f32) -> bool {
        !combined.is_nan() && combined >= self.combined_thresholds[0]
    }

    /// Serialises the head (prototypes quantised to 8 bits with one scale per vector).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let u32le = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
        let f32le = |out: &mut Vec<u8>, v: f32| out.extend_from_slice(&v.to_le_bytes());
        u32le(&mut out, self.dimension);
        u32le(&mut out, self.k);
        f32le(&mut out, self.safe_weight);
        for t in self.thresholds.into_iter().chain(self.combined_thresholds) {
            f32le(&mut out, t);
        }
        for d in [&self.signal_distribution, &self.rules_distribution] {
            u32le(&mut out, d.0.len());
            for &v in &d.0 {
                f32le(&mut out, v);
            }
        }
        u32le(&mut out, self.sets.len());
        for set in &self.sets {
            u32le(&mut out, set.labels.len());
            let vectors = set.codes.chunks_exact(self.dimension).zip(&set.scales);
            for ((codes, &scale), (label, &assistant)) in vectors.zip(set.labels.iter().zip(&set.assistant)) {
                let flag = if assistant { ASSISTANT_FLAG } else { 0 };
                out.push(label.map_or(SAFE_LABEL, |c| c.index() as u8) | flag);
                f32le(&mut out, scale);
                out.extend(codes.iter().map(|&c| c as u8));
            }
        }
        match &self.classifier {
            None => out.push(0),
            Some(c) => {
                out.push(1);
                f32le(&mut out, c.weight);
                u32le(&mut out, c.mlp.hidden);
                for &v in c.mlp.w1.iter().chain(&c.mlp.b1).chain(&c.mlp.w2) {
                    f32le(&mut out, v);
                }
                f32le(&mut out, c.mlp.b2);
                u32le(&mut out, c.logit_distribution.0.len());
                for &v in &c.logit_distribution.0 {
                    f32le(&mut out, v);
                }
            }
        }
        out
    }

    /// Reads a head written by [`EmbeddingHead::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeadError> {
        let mut r = Reader::new(bytes);
        if r.take(8)? != MAGIC {
            return Err(HeadError::Malformed("not an Onda embedding head"));
        }
        let dimension = r.u32()? as usize;
        let k = r.u32()? as usize;
        let safe_weight = r.f32()?;
        let thresholds = [r.f32()?, r.f32()?, r.f32()?];
        let combined_thresholds = [r.f32()?, r.f32()?, r.f32()?];
        let signal_distribution = read_distribution(&mut r)?;
        let rules_distribution = read_distribution(&mut r)?;
        if dimension == 0 || dimension > 4096 || k == 0 {
            return Err(HeadError::Malformed("bad dimension or k"));
        }
        let n_sets = r.u32()? as usize;
        let mut sets = Vec::new();
        for _ in 0..n_sets.min(16) {
            let n = r.u32()? as usize;
            if n.saturating_mul(dimension + 5) > bytes.len() {
                return Err(HeadError::Malformed("truncated prototypes"));
            }
            let mut set = SearchSet {
                codes: Vec::with_capacity(n * dimension),
                scales: Vec::with_capacity(n),
                labels: Vec::with_capacity(n),
                assistant: Vec::with_capacity(n),
            };
            for _ in 0..n {
                let byte = r.take(1)?[0];
                let label = if byte == SAFE_LABEL {
                    None
                } else {
                    let index = (byte & !ASSISTANT_FLAG) as usize;
                    Some(*Category::ALL.get(index).ok_or(HeadError::Malformed("bad label"))?)
                };
                set.assistant.push(byte != SAFE_LABEL && byte & ASSISTANT_FLAG != 0);
                set.scales.push(r.f32()?);
                set.codes.extend(r.take(dimension)?.iter().map(|&b| b as i8));
                set.labels.push(label);
            }
            sets.push(set);
        }
        let classifier = match r.take(1)?[0] {
            0 => None,
            1 => {
                let weight = r.f32()?;
                if !(0.0..=1.0).contains(&weight) {
                    return Err(HeadError::Malformed("bad classifier weight"));
                }
                let hidden = r.u32()? as usize;
                if hidden == 0 || hidden.saturating_mul(dimension + 2).saturating_mul(4) > bytes.len() {
                    return Err(HeadError::Malformed("bad classifier size"));
                }
                let mut floats = |n: usize| (0..n).map(|_| r.f32()).collect::<Result<Vec<_>, _>>();
                let w1 = floats(hidden * dimension)?;
                let b1 = floats(hidden)?;
                let w2 = floats(hidden)?;
                let b2 = r.f32()?;
                let mlp = Mlp { dimension, hidden, w1, b1, w2, b2 };
                let logit_distribution = read_distribution(&mut r)?;
                Some(Classifier { mlp, weight, logit_distribution })
            }
            _ => return Err(HeadError::Malformed("bad classifier flag")),
        };
        if !r.at_end() {
            return Err(HeadError::Malformed("trailing bytes"));
        }
        let mut head = Self::over(dimension, k, safe_weight, sets);
        head.thresholds = thresholds;
        head.combined_thresholds = combined_thresholds;
        head.signal_distribution = signal_distribution;
        head.rules_distribution = rules_distribution;
        head.classifier = classifier;
        Ok(head)
    }
}

/// A [`Distribution`] as the head file stores it: its length, then its percentiles.
fn read_distribution(r: &mut Reader<'_>) -> Result<Distribution, HeadError> {
    let n = r.u32()? as usize;
    if n > 1000 {
        return Err(HeadError::Malformed("distribution too long"));
    }
    Ok(Distribution((0..n).map(|_| r.f32()).collect::<Result<_, _>>()?))
}

/// Layer 2 over an embedding model: embeds the message and asks the head.
pub struct EmbeddingScorer<E> {
    embedder: E,
    head: EmbeddingHead,
}

impl<E: TextEmbedder> EmbeddingScorer<E> {
    /// Fails when the embedder's vectors are not the length the head was fitted on.
    pub fn new(embedder: E, head: EmbeddingHead) -> Result<Self, HeadError> {
        if embedder.dimension() != head.dimension {
            return Err(HeadError::Malformed("the embedding model does not match the head"));
        }
        Ok(Self { embedder, head })
    }

    pub fn head(&self) -> &EmbeddingHead {
        &self.head
    }
}

impl<E: TextEmbedder> LearnedScorer for EmbeddingScorer<E> {
    fn score(&self, _text: &str, read: &str, ctx: &Context) -> Result<LearnedScores, ScorerError> {
        let inputs = inputs_of_reading(read);
        if inputs.is_empty() {
            return Ok(LearnedScores::default());
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let vectors = self.embedder.embed(&inputs).map_err(ScorerError::Failed)?;
        if vectors.len() != inputs.len() {
            return Err(ScorerError::Failed("no embedding".into()));
        }
        if vectors.iter().any(|v| v.len() != self.head.dimension || v.iter().any(|x| !x.is_finite())) {
            return Err(ScorerError::Failed("the embedding is malformed".into()));
        }
        Ok(self.head.scores_of(self.head.strongest_signal(&vectors, ctx.role)))
    }

    fn combine(&self, rules_score: f32, learned: &LearnedScores) -> f32 {
        match learned.overall {
            Some(rank) => self.head.combine(rules_score, rank),
            None => rules_score,
        }
    }

    fn combined_policy_score(&self, combined: f32) -> Option<f32> {
        self.head.combined_policy_score(combined)
    }

    fn combined_redirect(&self, combined: f32) -> bool {
        self.head.combined_redirect(combined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize_for_embedding;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn toy_prototypes() -> Prototypes {
        Prototypes {
            vectors: vec![unit(&[1.0, 0.0, 0.0]), unit(&[0.0, 1.0, 0.0]), unit(&[0.0, 0.0, 1.0])],
            labels: vec![Some(Category::SelfHarm), Some(Category::Hate), None],
            assistant: vec![false, true, false],
        }
    }

    fn toy_head_over(prototypes: Prototypes) -> EmbeddingHead {
        let mut head = EmbeddingHead::new(3, 1, 0.5, &[prototypes]);
        head.thresholds = [0.2, 0.4, 0.6];
        head.combined_thresholds = [0.7, 0.8, 0.9];
        head.signal_distribution = Distribution::of(&[-0.5, 0.0, 0.5, 1.0]);
        head.rules_distribution = Distribution::of(&[0.0, 0.0, 0.5, 1.0]);
        head
    }

    fn toy_head() -> EmbeddingHead {
        toy_head_over(toy_prototypes())
    }

    #[test]
    fn nearest_unsafe_prototype_names_the_category_and_safe_ones_pull_down() {
        let head = toy_head();
        let near_self_harm = head.signal(&unit(&[1.0, 0.1, 0.0]), Role::Child);
        assert_eq!(near_self_harm.category, Some(Category::SelfHarm));
        let near_safe = head.signal(&unit(&[0.1, 0.0, 1.0]), Role::Child);
        assert!(near_safe.value < near_self_harm.value);
        assert!(head.policy_score(near_self_harm.value) >= policy::STRONG);
        assert!(head.policy_score(near_safe.value) < policy::MILD);
    }

    #[test]
    fn an_assistant_example_counts_only_against_the_assistant() {
        let head = toy_head();
        let near_hate = unit(&[0.0, 1.0, 0.1]);
        assert_eq!(head.signal(&near_hate, Role::Assistant).category, Some(Category::Hate));
        assert_ne!(head.signal(&near_hate, Role::Child).category, Some(Category::Hate));
        assert!(head.signal(&near_hate, Role::Child).value < head.signal(&near_hate, Role::Assistant).value);
    }

    #[test]
    fn policy_score_is_monotonic_and_hits_the_thresholds() {
        let head = toy_head();
        assert!((head.policy_score(0.2) - policy::MILD).abs() < 1e-6);
        assert!((head.policy_score(0.4) - policy::MODERATE).abs() < 1e-6);
        assert!((head.policy_score(0.6) - policy::STRONG).abs() < 1e-6);
        let mut last = -1.0;
        for i in -20..40 {
            let s = head.policy_score(i as f32 / 20.0);
            assert!(s >= last && (0.0..=1.0).contains(&s));
            last = s;
        }
    }

    #[test]
    fn the_combined_score_maps_onto_moderate_then_strong() {
        let head = toy_head();
        assert_eq!(head.combined_policy_score(0.79), None);
        assert_eq!(head.combined_policy_score(f32::NAN), None);
        assert_eq!(head.combined_policy_score(0.8), Some(policy::MODERATE));
        let between = head.combined_policy_score(0.85).expect("score");
        assert!(between > policy::MODERATE && between < policy::STRONG);
        assert_eq!(head.combined_policy_score(0.9), Some(policy::STRONG));
        assert_eq!(head.combined_policy_score(1.0), Some(policy::STRONG));
    }

    #[test]
    fn distribution_rank_interpolates_and_splits_ties() {
        let d = Distribution::of(&(0..=100).map(|i| i as f32).collect::<Vec<_>>());
        assert!((d.rank(50.0) - 0.5).abs() < 1e-6);
        assert!((d.rank(25.5) - 0.255).abs() < 1e-4);
        assert_eq!(d.rank(-3.0), 0.0);
        assert_eq!(d.rank(1000.0), 1.0);
        let tied = Distribution::of(&[0.0; 10]);
        assert!((tied.rank(0.0) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_search_reads_the_file_quantisation_and_matches_the_plain_cosine() {
        let vectors: Vec<Vec<f32>> = (0..20)
            .map(|n| unit(&(0..40).map(|i| (((i * 7 + n * 3) % 17) as f32 - 8.0) / 5.0).collect::<Vec<_>>()))
            .collect();
        let prototypes = Prototypes { labels: vec![None; 20], assistant: vec![false; 20], vectors };
        let search = SearchSet::of(&prototypes, 40);
        assert_eq!(search.codes.len(), 20 * 40);
        let query = unit(&(0..40).map(|i| ((i % 5) as f32 - 2.0) / 3.0).collect::<Vec<_>>());
        let sims = search.similarities(&query);
        assert_eq!(sims.len(), 20);
        for (sim, vector) in sims.iter().zip(&prototypes.vectors) {
            let plain: f32 = vector.iter().zip(&query).map(|(a, b)| a * b).sum();
            // 8-bit codes: within a few thousandths of the cosine.
            assert!((sim - plain).abs() < 0.01, "{sim} vs {plain}");
        }
        // The head read back from its file searches the same codes as the head that wrote it.
        let head = EmbeddingHead::new(40, 3, 0.5, &[prototypes]);
        let back = EmbeddingHead::from_bytes(&head.to_bytes()).expect("round trip");
        assert_eq!(back.sets[0].codes, head.sets[0].codes);
        assert_eq!(back.sets[0].scales, head.sets[0].scales);
        assert_eq!(head.signal(&query, Role::Child), back.signal(&query, Role::Child));
    }

    #[test]
    fn the_lane_dot_product_equals_the_plain_sum() {
        for len in [0usize, 1, 15, 16, 17, 384, 390] {
            let codes: Vec<i8> = (0..len).map(|i| ((i * 37 % 255) as i32 - 127) as i8).collect();
            let b: Vec<f32> = (0..len).map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0).collect();
            let plain: f32 = codes.iter().zip(&b).map(|(&x, y)| f32::from(x) * y).sum();
            let lanes = dot_i8(&codes, &b);
            assert!((lanes - plain).abs() < 1e-3 * plain.abs().max(1.0), "length {len}: {lanes} vs {plain}");
        }
    }

    #[test]
    fn bytes_round_trip_and_bad_bytes_are_errors() {
        let head = toy_head();
        let back = EmbeddingHead::from_bytes(&head.to_bytes()).expect("round trip");
        assert_eq!(back.sets[0].labels, head.sets[0].labels);
        assert_eq!(back.sets[0].assistant, head.sets[0].assistant);
        assert_eq!(back.thresholds, head.thresholds);
        assert_eq!(back.combined_thresholds, head.combined_thresholds);
        assert_eq!(back.signal_distribution, head.signal_distribution);
        let read = &back.sets[0];
        let vectors = read.codes.chunks_exact(back.dimension).zip(&read.scales);
        for ((codes, scale), original) in vectors.zip(&toy_prototypes().vectors) {
            assert!(codes.iter().zip(original).all(|(&c, y)| (f32::from(c) * scale - y).abs() < 0.01));
        }
        let bytes = head.to_bytes();
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(EmbeddingHead::from_bytes(&bytes[..cut]).is_err());
        }
        assert!(EmbeddingHead::from_bytes(b"ONDAEMB4\xff\xff\xff\xff").is_err());
        // A head of an earlier format (fewer combined thresholds, no classifier) is refused, not misread.
        for magic in [b"ONDAEMB1", b"ONDAEMB2", b"ONDAEMB3"] {
            let mut earlier = bytes.clone();
            earlier[..8].copy_from_slice(magic);
            assert!(EmbeddingHead::from_bytes(&earlier).is_err());
        }
    }

    /// A classifier over the toy head's three dimensions that reads only the third (the safe prototype's
    /// direction): it disagrees with the neighbours on purpose.
    fn toy_classifier(weight: f32) -> Classifier {
        Classifier {
            mlp: Mlp {
                dimension: 3,
                hidden: 2,
                w1: vec![0.0, 0.0, 1.0, 0.0, 0.0, -1.0],
                b1: vec![0.0, 0.0],
                w2: vec![2.0, -2.0],
                b2: -0.5,
            },
            weight,
            logit_distribution: Distribution::of(&[-2.5, -0.5, 1.5]),
        }
    }

    #[test]
    fn the_network_computes_relu_then_a_weighted_sum() {
        let mlp = toy_classifier(0.5).mlp;
        assert_eq!(mlp.logit(&[0.0, 0.0, 1.0]), 1.5);
        assert_eq!(mlp.logit(&[0.0, 0.0, -1.0]), -2.5);
        assert_eq!(mlp.logit(&[1.0, 0.0, 0.0]), -0.5);
        let long: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let plain: f32 = long.iter().map(|x| x * x).sum();
        assert!((dot(&long, &long) - plain).abs() < 1e-3);
    }

    #[test]
    fn a_classifier_mixes_its_rank_into_the_overall_and_leaves_the_thresholds_alone() {
        let mut head = toy_head();
        let query = unit(&[1.0, 0.1, 0.0]);
        let neighbours = head.signal(&query, Role::Child);
        assert_eq!(neighbours.logit, None);
        let alone = head.signal_distribution.rank(neighbours.value);
        assert_eq!(head.scores_of(neighbours).overall, Some(alone));
        for weight in [0.0, 0.3, 1.0] {
            head.classifier = Some(toy_classifier(weight));
            let signal = head.signal(&query, Role::Child);
            let c = head.classifier.clone().expect("classifier");
            let logit = c.mlp.logit(&query);
            assert_eq!(signal.logit, Some(logit));
            // The neighbours' value, category and policy score are unchanged.
            assert_eq!((signal.value, signal.category), (neighbours.value, neighbours.category));
            let scores = head.scores_of(signal);
            assert_eq!(scores.categories, head.scores_of(neighbours).categories);
            let expected = (1.0 - weight) * alone + weight * c.logit_distribution.rank(logit);
            assert!((scores.overall.expect("overall") - expected).abs() < 1e-6, "weight {weight}");
        }
        let back = EmbeddingHead::from_bytes(&head.to_bytes()).expect("round trip");
        assert_eq!(back.classifier, head.classifier);
        assert_eq!(back.signal(&query, Role::Child), head.signal(&query, Role::Child));
        let bytes = head.to_bytes();
        assert!(EmbeddingHead::from_bytes(&bytes[..bytes.len() - 3]).is_err());
    }

    #[test]
    fn the_strongest_passage_gives_the_value_and_the_strongest_logit_is_kept_apart() {
        let mut head = toy_head();
        head.classifier = Some(toy_classifier(0.3));
        // Near the self-harm prototype (the neighbours' strongest) and near the safe one (the
        // classifier's strongest: it reads the third dimension).
        let passages = vec![unit(&[1.0, 0.1, 0.0]), unit(&[0.1, 0.0, 1.0])];
        let strongest = head.strongest_signal(&passages, Role::Child);
        let each: Vec<Signal> = passages.iter().map(|p| head.signal(p, Role::Child)).collect();
        assert_eq!(strongest.value, each[0].value);
        assert_eq!(strongest.category, Some(Category::SelfHarm));
        assert_eq!(strongest.logit, each[1].logit);
        assert!(each[1].logit > each[0].logit);
    }

    #[test]
    fn the_builtin_head_loads() {
        let head = EmbeddingHead::builtin().expect("builtin head");
        assert_eq!(head.dimension, 384);
        assert!(head.sets.iter().map(|s| s.labels.len()).sum::<usize>() > 1000);
        assert!(head.sets.iter().all(|s| s.codes.len() == s.labels.len() * head.dimension));
        let [a, b, c] = head.thresholds;
        assert!(a <= b && b <= c);
        let [redirect, moderate, strong] = head.combined_thresholds;
        assert!(redirect <= moderate && moderate <= strong && redirect > 0.0 && strong <= 1.0);
        let classifier = head.classifier.expect("the builtin head has a classifier");
        assert_eq!(classifier.mlp.w1.len(), classifier.mlp.hidden * head.dimension);
        assert!(classifier.weight > 0.0 && classifier.weight < 1.0);
    }

    struct Broken;
    impl TextEmbedder for Broken {
        fn dimension(&self) -> usize {
            3
        }
        fn embed(&self, _: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            Ok(vec![vec![f32::NAN; 3]])
        }
    }

    #[test]
    fn a_long_message_is_cut_into_passages_of_sentences_and_a_short_one_is_not() {
        assert!(passages("i had a great day at school and we played tag").is_empty());
        let sentence = "We walked to the lake and watched the ducks swim around for a while.";
        let long = [sentence; 12].join(" ");
        let cut = passages(&long);
        assert!(cut.len() >= 3, "{cut:?}");
        for passage in &cut {
            let words = passage.split_whitespace().count();
            assert!((PASSAGE_WORDS / 2..=PASSAGE_WORDS * 2).contains(&words), "{words}");
        }
        let words: usize = cut.iter().map(|p| p.split_whitespace().count()).sum();
        assert_eq!(words, long.split_whitespace().count());
        // One sentence with no full stop is still cut.
        assert!(passages(&["word"; 200].join(" ")).len() >= 4);
        // What the scorer embeds: the text as read, then its passages; nothing for an empty text.
        assert!(embedding_inputs(" \u{200b} ").is_empty());
        assert_eq!(embedding_inputs("k 1 l l  m y s e l f"), vec!["kill myself".to_string()]);
        assert_eq!(embedding_inputs(&long).len(), 1 + cut.len());
    }

    /// Like a sentence embedder, an average: a text sits near the self-harm prototype as far as its words
    /// are about hurting, so one such sentence in a long post is diluted.
    struct Diluting;
    impl TextEmbedder for Diluting {
        fn dimension(&self) -> usize {
            3
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            Ok(texts
                .iter()
                .map(|t| {
                    let words = t.split_whitespace().count().max(1) as f32;
                    let hurting = if t.contains("hurt") { 30.0f32.min(words) } else { 0.0 };
                    unit(&[hurting / words, 0.0, 1.0 - hurting / words])
                })
                .collect())
        }
    }

    #[test]
    fn one_unsafe_passage_of_a_long_message_is_not_averaged_away() {
        let scorer = EmbeddingScorer::new(Diluting, toy_head()).expect("scorer");
        let filler = "We walked to the lake and watched the ducks swim around for a while.";
        let mut text = [filler; 10].join(" ");
        let calm = scorer.score(&text, &normalize_for_embedding(&text), &Context::child()).expect("score");
        assert!(calm.categories.get(Category::SelfHarm) < policy::MILD);
        text.push_str(" Tonight I want to hurt myself badly.");
        let head = toy_head();
        let whole = Diluting.embed(&[text.as_str()]).expect("embed").remove(0);
        assert!(head.policy_score(head.signal(&whole, Role::Child).value) < policy::MODERATE, "diluted");
        let worried = scorer.score(&text, &normalize_for_embedding(&text), &Context::child()).expect("score");
        assert_eq!(worried.categories.top().0, Category::SelfHarm);
        assert!(worried.categories.get(Category::SelfHarm) >= policy::MODERATE);
    }

    #[test]
    fn personal_information_is_left_to_the_detectors() {
        let mut prototypes = toy_prototypes();
        prototypes.labels[0] = Some(Category::Pii);
        let head = toy_head_over(prototypes);
        let near_pii = head.scores(&unit(&[1.0, 0.1, 0.0]), Role::Child);
        assert_eq!(near_pii.categories.top().1, 0.0);
        assert!(near_pii.overall.is_some_and(|rank| rank > 0.5));
    }

    #[test]
    fn a_malformed_embedding_is_an_error_not_a_score() {
        let scorer = EmbeddingScorer::new(Broken, toy_head()).expect("scorer");
        assert!(scorer.score("hello", "hello", &Context::child()).is_err());
    }
}
