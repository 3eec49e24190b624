//! The word model of alt-profanity-check: how likely a text is offensive language, from its words.
//!
//! alt-profanity-check (MIT; Copyright (c) 2018 Victor Zhou, 2021 Menelaos Kotoglou, and Dimitrios
//! Mistriotis) fits a linear SVM on TF-IDF word counts of about 200,000 human-labelled comments and
//! calibrates it with a sigmoid per fold of five. `tools/export_offensive_model.py` exports its vocabulary,
//! inverse document frequencies and per-fold coefficients to `model/offensive.bin`; this module evaluates
//! the same arithmetic (a test checks it against the package's own probabilities):
//!
//! - tokens: the lower-cased text's runs of two or more word characters (scikit-learn's
//!   `(?u)\b\w\w+\b`), counted, each count times its word's idf, the vector L2-normalised over the
//!   vocabulary's words (others are ignored);
//! - per fold `p = 1 / (1 + exp(a * (coef . x + intercept) + b))`; the probability is the folds' mean.
//!
//! It is a ranking signal only: it adds to a verdict's `unsafe_score`, never to its level (the engine,
//! `docs/safety.md`). It knows insults, slurs, profanity and sexual words in adults' comments, which the
//! project's own examples cover thinly, and nothing of a child's register.
//!
//! No IO: the model is parsed from bytes.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use crate::bytes::{Reader, Truncated};
use crate::lexical::ModelError;

const MAGIC: &[u8; 8] = b"ONDAOFF1";

/// The model shipped with Onda.
pub static BUILTIN: &[u8] = include_bytes!("../model/offensive.bin");

/// One calibrated fold: a linear SVM over the vocabulary and its sigmoid.
#[derive(Clone, Debug)]
struct Fold {
    intercept: f32,
    sigmoid_a: f32,
    sigmoid_b: f32,
    coefficients: Vec<f32>,
}

/// The offensive-language word model.
#[derive(Clone, Debug)]
pub struct OffensiveModel {
    index: HashMap<String, u32>,
    idf: Vec<f32>,
    folds: Vec<Fold>,
}

fn tokens() -> &'static Regex {
    static TOKENS: OnceLock<Regex> = OnceLock::new();
    // scikit-learn's default token pattern; `\w` and `\b` are Unicode-aware in both.
    TOKENS.get_or_init(|| Regex::new(r"\b\w\w+\b").expect("a valid pattern"))
}

/// Why the file could not be parsed (prefixed with "offensive model: " in the [`ModelError`]).
struct ParseError(String);

impl From<Truncated> for ParseError {
    fn from(_: Truncated) -> Self {
        ParseError("truncated".into())
    }
}

/// A weight as read, or an error when it is not a finite number.
fn finite(v: f32) -> Result<f32, ParseError> {
    if v.is_finite() { Ok(v) } else { Err(ParseError("a weight is not finite".into())) }
}

impl OffensiveModel {
    /// The model compiled into Onda.
    pub fn builtin() -> Result<Self, ModelError> {
        Self::from_bytes(BUILTIN)
    }

    /// Parses a model in the `ONDAOFF1` format (see `tools/export_offensive_model.py`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::parse(bytes).map_err(|ParseError(why)| ModelError(format!("offensive model: {why}")))
    }

    fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(ParseError("not an ONDAOFF1 file".into()));
        }
        let words = r.u32()? as usize;
        // Each word takes at least six bytes: a bound before allocating from a length in the file.
        if words.saturating_mul(6) > bytes.len() {
            return Err(ParseError("truncated".into()));
        }
        let mut index = HashMap::with_capacity(words);
        let mut idf = Vec::with_capacity(words);
        for i in 0..words {
            let len = r.u16()? as usize;
            let word =
                std::str::from_utf8(r.take(len)?).map_err(|_| ParseError("a word is not UTF-8".into()))?;
            if index.insert(word.to_string(), i as u32).is_some() {
                return Err(ParseError(format!("the word {word:?} is listed twice")));
            }
            idf.push(finite(r.f32()?)?);
        }
        let fold_count = r.u32()? as usize;
        if fold_count == 0 || fold_count.saturating_mul(words.saturating_mul(4)) > bytes.len() {
            return Err(ParseError("no folds, or truncated".into()));
        }
        let mut folds = Vec::with_capacity(fold_count);
        for _ in 0..fold_count {
            let (intercept, sigmoid_a, sigmoid_b) = (finite(r.f32()?)?, finite(r.f32()?)?, finite(r.f32()?)?);
            let coefficients = (0..words).map(|_| finite(r.f32()?)).collect::<Result<Vec<_>, _>>()?;
            folds.push(Fold { intercept, sigmoid_a, sigmoid_b, coefficients });
        }
        if !r.at_end() {
            return Err(ParseError("trailing bytes".into()));
        }
        Ok(Self { index, idf, folds })
    }

    /// How many words the model knows.
    pub fn vocabulary_len(&self) -> usize {
        self.idf.len()
    }

    /// The probability, in [0, 1], that the text is offensive language. A text with none of the model's
    /// words gets each fold's intercept alone, as in the original.
    pub fn probability(&self, text: &str) -> f32 {
        let lower = text.to_lowercase();
        // Sparse TF-IDF: (word index, count), then weighted and normalised. Sorting keeps a long text
        // O(n log n).
        let mut seen: Vec<u32> =
            tokens().find_iter(&lower).filter_map(|t| self.index.get(t.as_str()).copied()).collect();
        seen.sort_unstable();
        let mut counts: Vec<(u32, f32)> = Vec::new();
        for i in seen {
            match counts.last_mut() {
                Some((j, c)) if *j == i => *c += 1.0,
                _ => counts.push((i, 1.0)),
            }
        }
        for (i, c) in &mut counts {
            *c *= self.idf[*i as usize];
        }
        let norm = counts.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, v) in &mut counts {
                *v /= norm;
            }
        }
        let mean = self
            .folds
            .iter()
            .map(|fold| {
                let decision = fold.intercept
                    + counts.iter().map(|(i, v)| fold.coefficients[*i as usize] * v).sum::<f32>();
                1.0 / (1.0 + (fold.sigmoid_a * decision + fold.sigmoid_b).exp())
            })
            .sum::<f32>()
            / self.folds.len() as f32;
        mean.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_model_parses() {
        let model = OffensiveModel::builtin().expect("the built-in model parses");
        assert!(model.vocabulary_len() > 10_000);
        assert_eq!(model.folds.len(), 5);
    }

    #[test]
    fn insults_score_above_ordinary_sentences() {
        let model = OffensiveModel::builtin().expect("the built-in model parses");
        let insult = model.probability("you are a stupid worthless idiot, shut up");
        let ordinary = model.probability("we made pancakes this morning and went to the park");
        assert!(insult > 0.9, "{insult}");
        assert!(ordinary < 0.2, "{ordinary}");
    }

    #[test]
    fn empty_and_unknown_text_is_scored() {
        let model = OffensiveModel::builtin().expect("the built-in model parses");
        for text in ["", "   ", "😀😀", "zzqx qqvv"] {
            let p = model.probability(text);
            assert!((0.0..=1.0).contains(&p), "{text:?}: {p}");
        }
    }

    #[test]
    fn damaged_files_are_rejected() {
        assert!(OffensiveModel::from_bytes(b"").is_err());
        assert!(OffensiveModel::from_bytes(b"ONDALEX1").is_err());
        let mut truncated = BUILTIN.to_vec();
        truncated.truncate(BUILTIN.len() - 3);
        assert!(OffensiveModel::from_bytes(&truncated).is_err());
        let mut trailing = BUILTIN.to_vec();
        trailing.push(0);
        assert!(OffensiveModel::from_bytes(&trailing).is_err());
        // A length that claims more words than the file could hold.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(OffensiveModel::from_bytes(&huge).is_err());
    }
}
