//! The learned lexical model: hashed word and character n-gram features of the normalised text, scored by
//! one logistic-regression head per category plus one overall head.
//!
//! - **Features** ([`features`]): the text is normalised like the lexicons see it (light view, folded,
//!   repeats squeezed to two: leetspeak, homoglyphs and invisible characters are already undone; see
//!   [`normalize_for_model`] for leetspeak in numbers and spaced-out letters),
//!   then word unigrams, word bigrams and character 2- to 5-grams of every word padded with spaces are
//!   hashed (FNV-1a, with a sign bit) into `2^dim_bits` buckets. Values are `1 + ln(count)`, L2-normalised.
//! - **Heads**: `p = sigmoid(bias + w . x)`, one per category (the probability that the text deserves level
//!   2 or more in that category) and one overall head (level 2 or more in any category).
//! - **Weights** are trained by `safety-train` (see `crates/safety/model/README.md`) and shipped in
//!   `model/lexical.bin`, compiled into the binary. Each weight is one byte, square-root quantised (small
//!   weights keep their precision): `w = sign(q) * (|q| / 127)^2 * max_abs`.
//! - **Calibration**: each category head carries three thresholds chosen on data that is not eval-only
//!   (mild, moderate, strong). [`LexicalModel::score`] maps the raw probability piecewise-linearly so that
//!   those thresholds land on the policy's [`crate::policy::MILD`], [`crate::policy::MODERATE`] and
//!   [`crate::policy::STRONG`] scores.
//!
//! No IO: the model is parsed from bytes.

use crate::normalize::normalize_for_model;
use crate::policy::{MILD, MODERATE, STRONG};
use crate::types::{Category, CategoryScores};

/// The head id of the overall head in the file format.
pub const OVERALL: u8 = 255;
const MAGIC: &[u8; 8] = b"ONDALEX1";

/// The model shipped with Onda.
pub static BUILTIN: &[u8] = include_bytes!("../model/lexical.bin");

/// Why a model could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid lexical model: {0}")]
pub struct ModelError(pub String);

/// The raw probabilities of every head for one text.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LexicalScores {
    /// The calibrated per-category scores (policy scale: see the module documentation).
    pub categories: CategoryScores,
    /// The uncalibrated probability of each category head (0 where the model has no head).
    pub raw: [f32; Category::ALL.len()],
    /// The overall head's probability that the text is unsafe (level 2 or more).
    pub overall: f32,
}

/// One head's calibration: raw probabilities that map to the policy's mild, moderate and strong scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub mild: f32,
    pub moderate: f32,
    pub strong: f32,
}

impl Thresholds {
    /// The calibrated score of a raw probability (monotone, piecewise linear, in [0, 1]).
    pub fn calibrate(&self, p: f32) -> f32 {
        let seg = |p: f32, a: f32, b: f32, lo: f32, hi: f32| {
            if b <= a { hi } else { lo + (hi - lo) * ((p - a) / (b - a)).clamp(0.0, 1.0) }
        };
        if p < self.mild {
            seg(p, 0.0, self.mild, 0.0, MILD - 0.01)
        } else if p < self.moderate {
            seg(p, self.mild, self.moderate, MILD, MODERATE - 0.01)
        } else if p < self.strong {
            seg(p, self.moderate, self.strong, MODERATE, STRONG - 0.01)
        } else {
            seg(p, self.strong, 1.0, STRONG, 1.0)
        }
    }
}

#[derive(Clone, Debug)]
struct Head {
    id: u8,
    bias: f32,
    thresholds: Thresholds,
    /// Dequantisation table: byte -> weight.
    lut: [f32; 256],
}

/// A loaded lexical model. Cheap to share; scoring allocates one small feature vector.
#[derive(Clone, Debug)]
pub struct LexicalModel {
    dim_bits: u32,
    heads: Vec<Head>,
    /// `dim * heads.len()` bytes, bucket-major (the heads' weights of one bucket are adjacent).
    weights: std::borrow::Cow<'static, [u8]>,
}

fn read_f32(bytes: &[u8], at: &mut usize) -> Result<f32, ModelError> {
    let b = bytes.get(*at..*at + 4).ok_or_else(|| ModelError("truncated".into()))?;
    *at += 4;
    Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u32(bytes: &[u8], at: &mut usize) -> Result<u32, ModelError> {
    let b = bytes.get(*at..*at + 4).ok_or_else(|| ModelError("truncated".into()))?;
    *at += 4;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The dequantisation table for a head whose largest weight is `max_abs`.
fn lut(max_abs: f32) -> [f32; 256] {
    let mut t = [0.0f32; 256];
    for (b, slot) in t.iter_mut().enumerate() {
        let q = f32::from(b as u8 as i8);
        *slot = q.signum() * (q.abs() / 127.0).powi(2) * max_abs;
    }
    t
}

/// Quantises a weight to one byte (the inverse of the table made by `lut`).
pub fn quantize(w: f32, max_abs: f32) -> u8 {
    if max_abs <= 0.0 {
        return 0;
    }
    let q = ((w.abs() / max_abs).sqrt() * 127.0).round().min(127.0) * w.signum();
    q as i8 as u8
}

impl LexicalModel {
    /// The model shipped with Onda.
    pub fn builtin() -> Result<Self, ModelError> {
        Self::from_static(BUILTIN)
    }

    /// Reads a model from bytes that live for the whole program (no copy of the weights).
    pub fn from_static(bytes: &'static [u8]) -> Result<Self, ModelError> {
        let (dim_bits, heads, offset) = Self::header(bytes)?;
        Ok(Self { dim_bits, heads, weights: std::borrow::Cow::Borrowed(&bytes[offset..]) })
    }

    /// Reads a model from bytes (copied).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let (dim_bits, heads, offset) = Self::header(bytes)?;
        Ok(Self { dim_bits, heads, weights: std::borrow::Cow::Owned(bytes[offset..].to_vec()) })
    }

    fn header(bytes: &[u8]) -> Result<(u32, Vec<Head>, usize), ModelError> {
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(ModelError("bad magic".into()));
        }
        let mut at = 8;
        let dim_bits = read_u32(bytes, &mut at)?;
        let n = read_u32(bytes, &mut at)? as usize;
        if !(8..=24).contains(&dim_bits) || n == 0 || n > 64 {
            return Err(ModelError(format!("bad shape: 2^{dim_bits} x {n}")));
        }
        let mut heads = Vec::with_capacity(n);
        for _ in 0..n {
            let id = *bytes.get(at).ok_or_else(|| ModelError("truncated".into()))?;
            at += 1;
            if id != OVERALL && usize::from(id) >= Category::ALL.len() {
                return Err(ModelError(format!("unknown head {id}")));
            }
            let bias = read_f32(bytes, &mut at)?;
            let max_abs = read_f32(bytes, &mut at)?;
            let thresholds = Thresholds {
                mild: read_f32(bytes, &mut at)?,
                moderate: read_f32(bytes, &mut at)?,
                strong: read_f32(bytes, &mut at)?,
            };
            heads.push(Head { id, bias, thresholds, lut: lut(max_abs) });
        }
        let expected = (1usize << dim_bits) * n;
        if bytes.len() - at != expected {
            return Err(ModelError(format!("expected {expected} weight bytes, found {}", bytes.len() - at)));
        }
        Ok((dim_bits, heads, at))
    }

    /// Writes a model in the format [`LexicalModel::from_bytes`] reads. `heads`: (id, bias, max_abs,
    /// thresholds); `weights`: bucket-major bytes.
    pub fn encode(dim_bits: u32, heads: &[(u8, f32, f32, Thresholds)], weights: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(weights.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&dim_bits.to_le_bytes());
        out.extend_from_slice(&(heads.len() as u32).to_le_bytes());
        for (id, bias, max_abs, t) in heads {
            out.push(*id);
            for v in [*bias, *max_abs, t.mild, t.moderate, t.strong] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(weights);
        out
    }

    pub fn dim_bits(&self) -> u32 {
        self.dim_bits
    }

    /// The categories that have a head.
    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        self.heads.iter().filter_map(|h| Category::ALL.get(usize::from(h.id)).copied())
    }

    /// The calibration of a category's head.
    pub fn thresholds(&self, category: Category) -> Option<Thresholds> {
        self.heads.iter().find(|h| usize::from(h.id) == category.index()).map(|h| h.thresholds)
    }

    /// The calibration of the overall head.
    pub fn overall_thresholds(&self) -> Option<Thresholds> {
        self.heads.iter().find(|h| h.id == OVERALL).map(|h| h.thresholds)
    }

    /// Scores a text.
    pub fn score(&self, text: &str) -> LexicalScores {
        let feats = features(text, self.dim_bits);
        self.score_features(&feats)
    }

    /// Scores hashed features (see [`features`]).
    pub fn score_features(&self, feats: &[(u32, f32)]) -> LexicalScores {
        let n = self.heads.len();
        let mut z: Vec<f32> = self.heads.iter().map(|h| h.bias).collect();
        for &(j, v) in feats {
            let row = &self.weights[j as usize * n..(j as usize + 1) * n];
            for (k, b) in row.iter().enumerate() {
                z[k] += self.heads[k].lut[usize::from(*b)] * v;
            }
        }
        let mut out = LexicalScores::default();
        for (h, z) in self.heads.iter().zip(z) {
            let p = sigmoid(z);
            if h.id == OVERALL {
                out.overall = p;
            } else if let Some(c) = Category::ALL.get(usize::from(h.id)) {
                out.raw[c.index()] = p;
                out.categories.set(*c, h.thresholds.calibrate(p));
            }
        }
        out
    }
}

pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z.clamp(-30.0, 30.0)).exp())
}

/// FNV-1a, 64 bits, over a kind tag and the bytes.
fn hash(tag: u8, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(tag);
    h = h.wrapping_mul(0x0000_0100_0000_01b3);
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// At most this many bytes of the normalised text are read (a long post is judged by its beginning;
/// the rules still read all of it).
pub const MAX_FEATURE_BYTES: usize = 8_192;

/// The hashed features of a text: (bucket, value) sorted by bucket, L2-normalised. Signed hashing: a
/// feature's value is negated when its hash says so, which keeps collisions unbiased.
pub fn features(text: &str, dim_bits: u32) -> Vec<(u32, f32)> {
    // Leetspeak and spaced-out letters ("k i l l m y s e l f") are read as the words they spell.
    let mut norm = normalize_for_model(text);
    if norm.len() > MAX_FEATURE_BYTES {
        let mut cut = MAX_FEATURE_BYTES;
        while !norm.is_char_boundary(cut) {
            cut -= 1;
        }
        norm.truncate(cut);
    }
    let mask = (1u64 << dim_bits) - 1;
    let mut raw: Vec<(u32, f32)> = Vec::with_capacity(norm.len() * 4 + 8);
    let mut push = |h: u64| {
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        raw.push(((h & mask) as u32, sign));
    };
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    for (i, w) in words.iter().enumerate() {
        push(hash(b'w', &[w.as_bytes()]));
        if let Some(next) = words.get(i + 1) {
            push(hash(b'b', &[w.as_bytes(), next.as_bytes()]));
        }
        // Character n-grams of the word padded with spaces (" kill "), on chars.
        let padded: Vec<char> = std::iter::once(' ').chain(w.chars()).chain(std::iter::once(' ')).collect();
        let mut buf = [0u8; 32];
        for n in 2..=5usize {
            if padded.len() < n {
                break;
            }
            for win in padded.windows(n) {
                let mut len = 0;
                for c in win {
                    len += c.encode_utf8(&mut buf[len..]).len();
                }
                push(hash(b'0' + n as u8, &[&buf[..len]]));
            }
        }
    }
    // Sum the signed counts per bucket, then 1 + ln(|count|) with its sign, L2-normalised.
    raw.sort_unstable_by_key(|(j, _)| *j);
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(raw.len());
    for (j, s) in raw {
        match out.last_mut() {
            Some((last, v)) if *last == j => *v += s,
            _ => out.push((j, s)),
        }
    }
    out.retain(|(_, v)| *v != 0.0);
    let mut norm2 = 0.0f32;
    for (_, v) in out.iter_mut() {
        *v = v.signum() * (1.0 + v.abs().ln());
        norm2 += *v * *v;
    }
    let inv = if norm2 > 0.0 { 1.0 / norm2.sqrt() } else { 0.0 };
    for (_, v) in out.iter_mut() {
        *v *= inv;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_normalised_and_evasion_resistant() {
        let a = features("I want to kill myself", 16);
        let b = features("i w4nt to k1ll mysеlf", 16);
        assert_eq!(a, b);
        let n: f32 = a.iter().map(|(_, v)| v * v).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert!(features("", 16).is_empty());
        assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn quantisation_round_trips_closely() {
        let table = lut(2.0);
        for w in [-2.0f32, -0.5, -0.01, 0.0, 0.003, 0.2, 1.7] {
            let back = table[usize::from(quantize(w, 2.0))];
            assert!((back - w).abs() <= 0.02 + 0.03 * w.abs(), "{w} -> {back}");
        }
    }

    #[test]
    fn calibration_is_monotone_and_hits_the_policy_points() {
        let t = Thresholds { mild: 0.2, moderate: 0.4, strong: 0.7 };
        assert!((t.calibrate(0.2) - MILD).abs() < 1e-6);
        assert!((t.calibrate(0.4) - MODERATE).abs() < 1e-6);
        assert!((t.calibrate(0.7) - STRONG).abs() < 1e-6);
        let mut last = -1.0;
        for i in 0..=100 {
            let c = t.calibrate(i as f32 / 100.0);
            assert!(c >= last && (0.0..=1.0).contains(&c));
            last = c;
        }
    }

    #[test]
    fn the_builtin_model_loads_and_scores() {
        let m = LexicalModel::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(m.categories().count() >= 10);
        let bad = m.score("i want to kill myself tonight");
        let good = m.score("can you help me with my math homework");
        assert!(bad.overall > good.overall, "{} vs {}", bad.overall, good.overall);
        assert!(bad.raw[Category::SelfHarm.index()] > good.raw[Category::SelfHarm.index()]);
        let corrupt = LexicalModel::from_bytes(&BUILTIN[..100]);
        assert!(corrupt.is_err());
    }
}
