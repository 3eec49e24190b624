//! The labels the safety models learn from, shared by `safety-train` (the word model) and the lab's
//! experiments: the project's own rows and the permissive `train` sets of `../shared/datasets`, mapped
//! onto the engine's categories. No eval-only or dev set has a mapping here.

use std::collections::BTreeMap;

use crate::Category;

/// One head per category and the overall one.
pub const HEADS: usize = 17;
/// The overall head's index (after the 16 categories).
pub const OVERALL_HEAD: usize = 16;

/// (label, weight) per head; weight 0 = no label for that head.
pub type Labels = [(f32, f32); HEADS];

/// No label for any head.
fn unlabeled() -> Labels {
    [(0.0, 0.0); HEADS]
}

/// Labels for a row of the project corpus: positive for its category (and overall) when it deserves
/// level 2 or more; negative for every other head.
pub fn corpus_labels(v: &serde_json::Value) -> Labels {
    let unsafe_ = v["unsafe"].as_i64() == Some(1);
    // The authored prototype files give no level: their unsafe rows are at least a redirect.
    let level = v["level"].as_i64().unwrap_or(if unsafe_ { 2 } else { 0 });
    let cat = v["category"].as_str().and_then(Category::from_name);
    let positive = unsafe_ && level >= 2;
    let mut l = [(0.0, 1.0); HEADS];
    if let (true, Some(c)) = (positive, cat) {
        l[c.index()] = (1.0, 1.0);
        // A row of another category is a weaker negative for related heads (violence vs weapons...).
        for (k, slot) in l.iter_mut().enumerate().take(16) {
            if k != c.index() {
                slot.1 = 0.5;
            }
        }
    }
    l[OVERALL_HEAD] = (f32::from(u8::from(positive)), 1.0);
    l
}

fn set(l: &mut Labels, c: Category, y: f32) {
    l[c.index()] = (y, 1.0);
}

/// Labels for a row of the `train` set `source` (its file stem): davidson's "offensive" as profanity,
/// cssrs' ideation, behaviour and attempt as self-harm and its indicators as distress, forbidden_questions'
/// advice and lobbying areas as harmless; None for a row without its label or a set with no mapping.
pub fn train_labels(source: &str, v: &serde_json::Value) -> Option<Labels> {
    let mut l = unlabeled();
    let raw = &v["raw"];
    match source {
        "davidson_hate_offensive" => {
            let class = raw["class"].as_str().and_then(|s| s.parse::<u8>().ok())?;
            match class {
                0 => {
                    set(&mut l, Category::Hate, 1.0);
                    l[OVERALL_HEAD] = (1.0, 1.0);
                }
                1 => {
                    set(&mut l, Category::Profanity, 1.0);
                    set(&mut l, Category::Hate, 0.0);
                    l[OVERALL_HEAD] = (1.0, 1.0);
                }
                _ => {
                    set(&mut l, Category::Profanity, 0.0);
                    set(&mut l, Category::Hate, 0.0);
                    l[OVERALL_HEAD] = (0.0, 1.0);
                }
            }
        }
        "cssrs_reddit500" => match raw["cssrs_label"].as_str()? {
            "Ideation" | "Behavior" | "Attempt" => {
                set(&mut l, Category::SelfHarm, 1.0);
                l[OVERALL_HEAD] = (1.0, 1.0);
            }
            "Indicator" => {
                set(&mut l, Category::Distress, 1.0);
                l[OVERALL_HEAD] = (1.0, 1.0);
            }
            _ => {
                set(&mut l, Category::SelfHarm, 0.0);
                set(&mut l, Category::Distress, 0.0);
                l[OVERALL_HEAD] = (0.0, 1.0);
            }
        },
        "presidio_synth_pii" => {
            let y = f32::from(u8::from(v["unsafe"].as_i64() == Some(1)));
            set(&mut l, Category::Pii, y);
        }
        "jailbreak_prompts" => {
            set(&mut l, Category::Jailbreak, 1.0);
            l[OVERALL_HEAD] = (1.0, 1.0);
        }
        "forbidden_questions" => {
            let area = raw["content_policy_name"].as_str()?;
            let cat = match area {
                "Illegal Activity" | "Malware" | "Economic Harm" | "Fraud" => {
                    Some(Category::DangerousActivity)
                }
                "Hate Speech" => Some(Category::Hate),
                "Physical Harm" => Some(Category::Violence),
                "Pornography" => Some(Category::Sexual),
                "Privacy Violence" => Some(Category::Pii),
                // Political lobbying, legal opinion, financial or health advice, government decisions:
                // not harmful to a child; hard negatives.
                _ => None,
            };
            match cat {
                Some(c) => {
                    set(&mut l, c, 1.0);
                    l[OVERALL_HEAD] = (1.0, 1.0);
                }
                None => l[OVERALL_HEAD] = (0.0, 1.0),
            }
        }
        _ => return None,
    }
    Some(l)
}

/// Scales each sample's weights so that, per source, head and class, they sum to `budget(source) *
/// base_rows / 2`: every source weighs what its budget says, split evenly between its positives and
/// negatives, so that a one-sided set cannot teach "which dataset is this".
pub fn balance_sources(samples: &mut [(&str, &mut Labels)], budget: impl Fn(&str) -> f32, base_rows: usize) {
    let mut totals: BTreeMap<(&str, usize, bool), f32> = BTreeMap::new();
    for (source, labels) in samples.iter() {
        for (h, (y, w)) in labels.iter().enumerate() {
            if *w > 0.0 {
                *totals.entry((*source, h, *y > 0.5)).or_default() += *w;
            }
        }
    }
    for (source, labels) in samples.iter_mut() {
        for (h, (y, w)) in labels.iter_mut().enumerate() {
            if *w <= 0.0 {
                continue;
            }
            let class_total = totals.get(&(*source, h, *y > 0.5)).copied().unwrap_or(1.0);
            let b = budget(source) * base_rows as f32 * 0.5;
            *w = *w * b / class_total;
        }
    }
}

/// A small deterministic generator (xorshift64), so that training gives the same bytes every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
