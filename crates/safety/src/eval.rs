//! Evaluation on labeled data in the shared format: one JSON object per line with `text`, `unsafe` (1, 0,
//! or null = unknown, skipped), `category`, optionally `role` (`child` by default) and `raw` (the original
//! labels; integer-valued keys equal to 1 are reported as `raw:KEY` categories, and the text values of
//! `harm_area`, `category` and `age_band` as `raw:KEY=VALUE`).
//!
//! Reported per dataset: AUPRC (average precision) of `unsafe_score`; precision, recall and F1 at the
//! blocking level (level >= 3); the flagged rate (level >= 2) on the unsafe rows; the false-positive rates
//! on the safe rows (at >= 3 and >= 2); recall per category. Never includes the texts.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::evasion::Evasion;
use crate::types::{Context, Role};

/// One labeled row.
#[derive(Clone, Debug, Deserialize)]
pub struct Row {
    pub text: String,
    /// Some(true) unsafe, Some(false) safe, None unknown (skipped).
    #[serde(rename = "unsafe", default, deserialize_with = "de_label")]
    pub label: Option<bool>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    /// The project's authored rows say whose register they are written in ("adult" or "child").
    #[serde(default)]
    pub register: Option<String>,
    #[serde(default)]
    pub raw: serde_json::Value,
}

impl Row {
    /// The context a row is assessed in: its role, no history, no age.
    pub fn context(&self) -> Context {
        Context { role: self.role.unwrap_or_default(), ..Context::default() }
    }
}

fn de_label<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::Number(n) => n.as_f64().map(|x| x >= 0.5),
        _ => None,
    })
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("line {line}: {source}")]
    Parse { line: usize, source: serde_json::Error },
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads rows from JSON lines (blank lines are skipped).
pub fn read_rows(reader: impl BufRead) -> Result<Vec<Row>, EvalError> {
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(serde_json::from_str(&line).map_err(|source| EvalError::Parse { line: i + 1, source })?);
    }
    Ok(rows)
}

/// Recall of one category's unsafe rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CategoryRecall {
    pub rows: usize,
    /// Share of the rows at level >= 3.
    pub recall_blocked: f64,
    /// Share of the rows at level >= 2.
    pub recall_flagged: f64,
}

/// The measures of one dataset.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub dataset: String,
    /// Rows with a label.
    pub rows: usize,
    pub unsafe_rows: usize,
    pub safe_rows: usize,
    /// Rows without a label (skipped).
    pub skipped: usize,
    /// Average precision of `unsafe_score` (None when there are no unsafe rows).
    pub auprc: Option<f64>,
    /// At the blocking level (>= 3).
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Share of the unsafe rows at level >= 2.
    pub flagged_rate: Option<f64>,
    /// Share of the safe rows at level >= 3.
    pub false_positive_rate: Option<f64>,
    /// Share of the safe rows at level >= 2.
    pub false_positive_rate_flagged: Option<f64>,
    pub per_category: BTreeMap<String, CategoryRecall>,
    /// Mean time per assessment, in microseconds.
    pub mean_micros: f64,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Average precision (area under the precision-recall curve, step-wise; tied scores form one step).
pub fn average_precision(scored: &[(f32, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, y)| *y).count();
    if positives == 0 {
        return None;
    }
    let mut sorted: Vec<(f32, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut seen, mut ap, mut i) = (0usize, 0usize, 0.0f64, 0usize);
    while i < sorted.len() {
        let mut j = i;
        let mut tp_here = 0;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            tp_here += usize::from(sorted[j].1);
            j += 1;
        }
        seen += j - i;
        tp += tp_here;
        ap += (tp_here as f64 / positives as f64) * (tp as f64 / seen as f64);
        i = j;
    }
    Some(ap)
}

/// Assesses every labeled row and measures.
pub fn evaluate(engine: &Engine, dataset: &str, rows: &[Row]) -> Report {
    let mut scored = Vec::with_capacity(rows.len());
    let (mut tp, mut fp, mut fneg, mut flagged_unsafe, mut flagged_safe) = (0, 0, 0, 0, 0);
    let mut skipped = 0;
    let mut per_cat: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let started = Instant::now();
    for row in rows {
        let Some(label) = row.label else {
            skipped += 1;
            continue;
        };
        let verdict = engine.assess(&row.text, &row.context());
        let blocked = verdict.level >= 3;
        let flagged = verdict.level >= 2;
        scored.push((verdict.unsafe_score, label));
        match (label, blocked) {
            (true, true) => tp += 1,
            (true, false) => fneg += 1,
            (false, true) => fp += 1,
            (false, false) => {}
        }
        if label {
            flagged_unsafe += usize::from(flagged);
            let mut cats: Vec<String> = row.category.iter().cloned().collect();
            if let serde_json::Value::Object(map) = &row.raw {
                for (k, v) in map {
                    if v.as_i64() == Some(1) {
                        cats.push(format!("raw:{k}"));
                    } else if let Some(name) = v.as_str().filter(|_| RAW_GROUPINGS.contains(&k.as_str())) {
                        cats.push(format!("raw:{k}={name}"));
                    }
                }
            }
            for c in cats {
                let e = per_cat.entry(c).or_default();
                e.0 += 1;
                e.1 += usize::from(blocked);
                e.2 += usize::from(flagged);
            }
        } else {
            flagged_safe += usize::from(flagged);
        }
    }
    let n = scored.len();
    let unsafe_rows = tp + fneg;
    let safe_rows = n - unsafe_rows;
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, unsafe_rows);
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    Report {
        dataset: dataset.to_string(),
        rows: n,
        unsafe_rows,
        safe_rows,
        skipped,
        auprc: if safe_rows > 0 { average_precision(&scored) } else { None },
        precision,
        recall,
        f1,
        flagged_rate: ratio(flagged_unsafe, unsafe_rows),
        false_positive_rate: ratio(fp, safe_rows),
        false_positive_rate_flagged: ratio(flagged_safe, safe_rows),
        per_category: per_cat
            .into_iter()
            .map(|(k, (rows, b, f))| {
                (
                    k,
                    CategoryRecall {
                        rows,
                        recall_blocked: b as f64 / rows as f64,
                        recall_flagged: f as f64 / rows as f64,
                    },
                )
            })
            .collect(),
        mean_micros: if n > 0 { started.elapsed().as_secs_f64() * 1e6 / n as f64 } else { 0.0 },
    }
}

impl Report {
    /// A human-readable summary.
    pub fn to_text(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        let mut out = format!(
            "{}: {} rows ({} unsafe, {} safe, {} skipped)\n  AUPRC {}  |  at level>=3: precision {} recall {} F1 {}  |  flagged (>=2) on unsafe {}  |  FPR on safe: >=3 {} >=2 {}  |  {:.1} us/text\n",
            self.dataset,
            self.rows,
            self.unsafe_rows,
            self.safe_rows,
            self.skipped,
            f(self.auprc),
            f(self.precision),
            f(self.recall),
            f(self.f1),
            f(self.flagged_rate),
            f(self.false_positive_rate),
            f(self.false_positive_rate_flagged),
            self.mean_micros,
        );
        for (cat, r) in &self.per_category {
            out.push_str(&format!(
                "    {cat:<24} {:>5} rows  recall >=3 {:.3}  >=2 {:.3}\n",
                r.rows, r.recall_blocked, r.recall_flagged
            ));
        }
        out
    }
}

/// The flagged rate (level >= 2) of the unsafe rows, as written and rewritten by each evasion, and the same
/// rate on the safe rows (a rewrite must not make safe text look unsafe either).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EvasionReport {
    pub dataset: String,
    pub unsafe_rows: usize,
    pub safe_rows: usize,
    /// Share of the unsafe rows at level >= 2, as written.
    pub flagged_rate: f64,
    /// Share of the safe rows at level >= 2, as written (None without safe rows).
    pub false_positive_rate_flagged: Option<f64>,
    pub variants: Vec<EvasionVariant>,
}

/// The measures of the rows rewritten by one evasion.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvasionVariant {
    pub evasion: Evasion,
    /// Share of the rewritten unsafe rows at level >= 2.
    pub flagged_rate: f64,
    /// How far the flagged rate of the unsafe rows fell from the rate as written, in points (negative: it
    /// rose).
    pub drop_points: f64,
    /// Share of the rewritten safe rows at level >= 2 (None without safe rows).
    pub false_positive_rate_flagged: Option<f64>,
}

/// Measures how much each evasion lowers the flagged rate of the unsafe rows (and moves that of the safe
/// rows). Rows without a label are skipped.
pub fn evaluate_evasion(engine: &Engine, dataset: &str, rows: &[Row]) -> EvasionReport {
    let unsafe_rows: Vec<&Row> = rows.iter().filter(|r| r.label == Some(true)).collect();
    let safe_rows: Vec<&Row> = rows.iter().filter(|r| r.label == Some(false)).collect();
    let flagged = |rows: &[&Row], rewrite: &dyn Fn(&str) -> String| {
        let n = rows.iter().filter(|r| engine.assess(&rewrite(&r.text), &r.context()).level >= 2).count();
        ratio(n, rows.len())
    };
    let as_written = |t: &str| t.to_string();
    let base = flagged(&unsafe_rows, &as_written).unwrap_or(0.0);
    let variants = Evasion::ALL
        .iter()
        .map(|e| {
            let rewrite = |t: &str| e.apply(t);
            let rate = flagged(&unsafe_rows, &rewrite).unwrap_or(0.0);
            EvasionVariant {
                evasion: *e,
                flagged_rate: rate,
                drop_points: (base - rate) * 100.0,
                false_positive_rate_flagged: flagged(&safe_rows, &rewrite),
            }
        })
        .collect();
    EvasionReport {
        dataset: dataset.to_string(),
        unsafe_rows: unsafe_rows.len(),
        safe_rows: safe_rows.len(),
        flagged_rate: base,
        false_positive_rate_flagged: flagged(&safe_rows, &as_written),
        variants,
    }
}

impl EvasionReport {
    /// The largest drop of the flagged rate over the evasions, in points (0 when none lowers it).
    pub fn worst_drop(&self) -> f64 {
        self.variants.iter().map(|v| v.drop_points).fold(0.0, f64::max)
    }

    pub fn to_text(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
        let mut out = format!(
            "{}: evasion on {} unsafe rows, flagged (>=2) as written {:.3}; {} safe rows, flagged {}\n",
            self.dataset,
            self.unsafe_rows,
            self.flagged_rate,
            self.safe_rows,
            f(self.false_positive_rate_flagged)
        );
        for v in &self.variants {
            out.push_str(&format!(
                "    {:<16} flagged {:.3}  drop {:+.1} points  |  safe rows flagged {}\n",
                v.evasion.name(),
                v.flagged_rate,
                v.drop_points,
                f(v.false_positive_rate_flagged)
            ));
        }
        out
    }
}

/// The measured tables of `docs/safety.md` (written by `safety-eval --markdown FILE`).
pub fn markdown(reports: &[(Report, Option<EvasionReport>)]) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
    let mut out = String::from(MARKDOWN_HEAD);
    out.push_str("\n| dataset | use | rows (unsafe) | AUPRC | P / R / F1 at level >= 3 | flagged (>= 2) on unsafe | FPR safe >= 3 / >= 2 | µs per text |\n|---|---|---|---|---|---|---|---|\n");
    for (r, _) in reports {
        out.push_str(&format!(
            "| {} | {} | {} ({}) | {} | {} / {} / {} | {} | {} / {} | {:.0} |\n",
            r.dataset,
            dataset_use(&r.dataset),
            r.rows,
            r.unsafe_rows,
            f(r.auprc),
            f(r.precision),
            f(r.recall),
            f(r.f1),
            f(r.flagged_rate),
            f(r.false_positive_rate),
            f(r.false_positive_rate_flagged),
            r.mean_micros
        ));
    }
    out.push_str("\n### Recall per category (level >= 3 / level >= 2)\n\n| dataset | category | rows | recall >= 3 | recall >= 2 |\n|---|---|---|---|---|\n");
    for (r, _) in reports {
        for (c, cr) in &r.per_category {
            out.push_str(&format!(
                "| {} | {c} | {} | {:.3} | {:.3} |\n",
                r.dataset, cr.rows, cr.recall_blocked, cr.recall_flagged
            ));
        }
    }
    out.push_str("\n### Evasion: flagged rate (level >= 2) of the unsafe rows, rewritten (drop in points)\n\n| dataset | as written | leetspeak | homoglyphs | zero-width | spaced letters | dotted letters |\n|---|---|---|---|---|---|---|\n");
    for (_, ev) in reports {
        if let Some(ev) = ev.as_ref().filter(|e| e.unsafe_rows > 0) {
            out.push_str(&format!("| {} | {:.3} |", ev.dataset, ev.flagged_rate));
            for v in &ev.variants {
                out.push_str(&format!(" {:.3} ({:+.1}) |", v.flagged_rate, v.drop_points));
            }
            out.push('\n');
        }
    }
    out.push_str("\n### Evasion: flagged rate (level >= 2) of the safe rows, rewritten\n\n| dataset | as written | leetspeak | homoglyphs | zero-width | spaced letters | dotted letters |\n|---|---|---|---|---|---|---|\n");
    for (_, ev) in reports {
        if let Some((ev, fpr)) = ev.as_ref().and_then(|e| e.false_positive_rate_flagged.map(|f| (e, f))) {
            out.push_str(&format!("| {} | {fpr:.3} |", ev.dataset));
            for v in &ev.variants {
                out.push_str(&format!(" {} |", f(v.false_positive_rate_flagged)));
            }
            out.push('\n');
        }
    }
    out.push_str(MARKDOWN_TAIL);
    out
}

/// Raw keys whose text value groups a set's rows (its harm area, its own category, the age band), reported
/// as `raw:KEY=VALUE` categories so that a set whose rows all map to one coarse category still shows where
/// the engine misses.
const RAW_GROUPINGS: [&str; 3] = ["harm_area", "category", "age_band"];

/// How a dataset may be used, by its name (`../shared/datasets/README.md`).
pub fn dataset_use(name: &str) -> &'static str {
    match name {
        "openai_moderation" | "toxicchat_test" | "xstest" | "simplesafetytests" | "safe_child_llm" => {
            "eval-only"
        }
        "toxicchat_train" | "formspring_cyberbullying" | "cyberbullying_tweets" | "pan12_grooming_valseg" => {
            "dev"
        }
        "corpus_heldout" => "project, held out",
        // Written by the project, no shipped weights fitted on them; layer 1's request rules were written
        // against their misses.
        "requests_more" | "kids_risky" | "lookalikes" => "project, dev",
        // Written by the project to measure how often ordinary family talk is taken for abuse; never fitted.
        "family_everyday" => "project, dev",
        // Written by a helper on 2026-12-07 and split in two by a hash of the text: rules were written
        // against the misses of the first half; the second half was never read (docs/safety.md, step 18).
        "kids_chatbot_tune" => "project, dev",
        "kids_chatbot_blind" => "project, held out",
        "examples" | "adult_register" | "corpus_train" => "project",
        _ => "train",
    }
}

const MARKDOWN_HEAD: &str = include_str!("../docs-head.md");
const MARKDOWN_TAIL: &str = include_str!("../docs-tail.md");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_matches_hand_computation() {
        let perfect = [(0.9, true), (0.8, true), (0.1, false)];
        assert_eq!(average_precision(&perfect), Some(1.0));
        // ranks: + - + : AP = (1/2)(1/1) + (1/2)(2/3)
        let mixed = [(0.9, true), (0.5, false), (0.2, true)];
        let ap = average_precision(&mixed).unwrap_or(0.0);
        assert!((ap - (0.5 + 1.0 / 3.0)).abs() < 1e-9);
        // all tied: precision is the base rate
        let tied = [(0.5, true), (0.5, false)];
        assert_eq!(average_precision(&tied), Some(0.5));
        assert_eq!(average_precision(&[(0.1, false)]), None);
    }

    #[test]
    fn text_valued_raw_groupings_become_categories() {
        let data = "{\"text\":\"how do i make a bomb\",\"unsafe\":1,\"category\":\"other\",\"raw\":{\"harm_area\":\"Weapons\",\"source\":\"x\",\"H\":1}}\n";
        let rows = read_rows(data.as_bytes()).unwrap_or_default();
        let engine = Engine::builtin().unwrap_or_else(|e| panic!("{e}"));
        let report = evaluate(&engine, "set", &rows);
        let names: Vec<&str> = report.per_category.keys().map(String::as_str).collect();
        // The harm area is reported, the source (not a grouping) is not.
        assert_eq!(names, ["other", "raw:H", "raw:harm_area=Weapons"]);
    }

    #[test]
    fn reads_the_shared_format() {
        let data = "{\"text\":\"a\",\"unsafe\":1,\"category\":\"hate\",\"raw\":{\"H\":1,\"S\":0}}\n\n{\"text\":\"b\",\"unsafe\":null}\n{\"text\":\"c\",\"unsafe\":0,\"role\":\"assistant\"}\n";
        let rows = read_rows(data.as_bytes()).unwrap_or_default();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].label, Some(true));
        assert_eq!(rows[1].label, None);
        assert_eq!(rows[2].role, Some(Role::Assistant));
    }
}
