//! Trains the lexical model and writes `crates/safety/model/lexical.bin`.
//!
//! `cargo run -p onda-safety --release --bin safety-train -- [--datasets DIR] [--out FILE] [--validate-only]`
//!
//! Fits on the project corpus (`data/corpus_train.jsonl`) and the `train` sets of `DIR` (default
//! `../shared/datasets`): davidson_hate_offensive, cssrs_reddit500, presidio_synth_pii, jailbreak_prompts,
//! forbidden_questions, re-weighted per source and balanced within each source. Calibrates the thresholds
//! on the held-out project split (`data/corpus_heldout.jsonl`) and the `dev` sets (toxicchat_train,
//! formspring_cyberbullying, cyberbullying_tweets, pan12_grooming_valseg). Never reads an eval-only set.
//! Deterministic: the same data gives the same bytes. Prints measures only, never texts.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use onda_safety::Category;
use onda_safety::eval::average_precision;
use onda_safety::lexical::{LexicalModel, OVERALL, Thresholds, features, quantize, sigmoid};
use onda_safety::training::{HEADS, Labels, OVERALL_HEAD, Rng, balance_sources, corpus_labels, train_labels};

const DIM_BITS: u32 = 17;
const EPOCHS: usize = 6;
const LEARNING_RATE: f32 = 0.4;
const L2: f32 = 2e-6;

struct Sample {
    source: &'static str,
    feats: Vec<(u32, f32)>,
    labels: Labels,
}

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?);
    }
    Ok(out)
}

fn text(v: &serde_json::Value) -> &str {
    v["text"].as_str().unwrap_or("")
}

/// Validation labels for the dev sets: (category or None for overall-only, unsafe).
fn dev_category(source: &str, v: &serde_json::Value) -> Option<Category> {
    match source {
        "formspring_cyberbullying" => Some(Category::Harassment),
        "cyberbullying_tweets" => match v["raw"]["cyberbullying_type"].as_str() {
            Some("ethnicity" | "religion") => Some(Category::Hate),
            _ => Some(Category::Harassment),
        },
        "pan12_grooming_valseg" => Some(Category::Grooming),
        _ => None,
    }
}

/// Relative budget of each source (the project corpus is 1.0): the sum of its sample weights per head is
/// `budget * corpus rows`, split evenly between its positives and negatives.
fn budget(source: &str) -> f32 {
    match source {
        "corpus" => 1.0,
        "davidson_hate_offensive" => 0.5,
        "cssrs_reddit500" => 0.2,
        "presidio_synth_pii" => 0.1,
        "jailbreak_prompts" => 0.1,
        "forbidden_questions" => 0.15,
        _ => 0.0,
    }
}

fn reweight(samples: &mut [Sample], corpus_rows: usize) {
    let mut parts: Vec<(&str, &mut Labels)> = samples.iter_mut().map(|s| (s.source, &mut s.labels)).collect();
    balance_sources(&mut parts, budget, corpus_rows);
}

struct Trained {
    weights: Vec<f32>, // bucket-major, HEADS per bucket
    bias: [f32; HEADS],
}

fn train(samples: &[Sample]) -> Trained {
    let dim = 1usize << DIM_BITS;
    let mut w = vec![0.0f32; dim * HEADS];
    let mut g2 = vec![1e-3f32; dim * HEADS];
    let mut bias = [0.0f32; HEADS];
    let mut bias_g2 = [1e-3f32; HEADS];
    let mut order: Vec<usize> = (0..samples.len()).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for epoch in 0..EPOCHS {
        rng.shuffle(&mut order);
        let mut loss = 0.0f64;
        for &i in &order {
            let s = &samples[i];
            let mut z = bias;
            for &(j, v) in &s.feats {
                let row = &w[j as usize * HEADS..(j as usize + 1) * HEADS];
                for h in 0..HEADS {
                    z[h] += row[h] * v;
                }
            }
            let mut grad = [0.0f32; HEADS];
            for h in 0..HEADS {
                let (y, sw) = s.labels[h];
                if sw <= 0.0 {
                    continue;
                }
                let p = sigmoid(z[h]);
                grad[h] = (p - y) * sw;
                loss += f64::from(sw)
                    * -f64::from(if y > 0.5 { p.max(1e-7).ln() } else { (1.0 - p).max(1e-7).ln() });
                bias_g2[h] += grad[h] * grad[h];
                bias[h] -= LEARNING_RATE * grad[h] / bias_g2[h].sqrt();
            }
            for &(j, v) in &s.feats {
                let base = j as usize * HEADS;
                for h in 0..HEADS {
                    if s.labels[h].1 <= 0.0 {
                        continue;
                    }
                    let g = grad[h] * v + L2 * w[base + h];
                    g2[base + h] += g * g;
                    w[base + h] -= LEARNING_RATE * g / g2[base + h].sqrt();
                }
            }
        }
        eprintln!("epoch {}: weighted loss {:.1}", epoch + 1, loss);
    }
    Trained { weights: w, bias }
}

/// The lowest threshold at which the precision of `p >= t` reaches `target` (with at least 3 positives
/// above it), or None.
fn threshold_for_precision(scored: &[(f32, bool)], target: f64) -> Option<f32> {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut n, mut best) = (0usize, 0usize, None);
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].0;
        while i < sorted.len() && sorted[i].0 == t {
            tp += usize::from(sorted[i].1);
            n += 1;
            i += 1;
        }
        if tp >= 3 && tp as f64 / n as f64 >= target {
            best = Some(t);
        }
    }
    best
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut datasets = PathBuf::from("../shared/datasets");
    let mut out = manifest.join("model/lexical.bin");
    let mut validate_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--datasets" => datasets = args.next().ok_or("--datasets needs a folder")?.into(),
            "--out" => out = args.next().ok_or("--out needs a file")?.into(),
            "--validate-only" => validate_only = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    // Training data.
    let mut samples = Vec::new();
    let corpus = read_jsonl(&manifest.join("data/corpus_train.jsonl"))?;
    let corpus_rows = corpus.len();
    for v in &corpus {
        samples.push(Sample {
            source: "corpus",
            feats: features(text(v), DIM_BITS),
            labels: corpus_labels(v),
        });
    }
    for source in [
        "davidson_hate_offensive",
        "cssrs_reddit500",
        "presidio_synth_pii",
        "jailbreak_prompts",
        "forbidden_questions",
    ] {
        let rows = read_jsonl(&datasets.join(format!("{source}.jsonl")))?;
        let mut n = 0;
        for v in &rows {
            if let Some(labels) = train_labels(source, v) {
                samples.push(Sample { source, feats: features(text(v), DIM_BITS), labels });
                n += 1;
            }
        }
        eprintln!("{source}: {n} training rows");
    }
    eprintln!("corpus: {corpus_rows} training rows");
    reweight(&mut samples, corpus_rows);
    let trained = train(&samples);

    // Quantise, then validate and calibrate with the quantised model (what ships).
    let dim = 1usize << DIM_BITS;
    let mut max_abs = [0.0f32; HEADS];
    for (i, w) in trained.weights.iter().enumerate() {
        let h = i % HEADS;
        max_abs[h] = max_abs[h].max(w.abs());
    }
    let bytes: Vec<u8> =
        trained.weights.iter().enumerate().map(|(i, w)| quantize(*w, max_abs[i % HEADS])).collect();
    let placeholder = Thresholds { mild: 0.5, moderate: 0.7, strong: 0.9 };
    let head_ids: Vec<u8> = (0..HEADS).map(|h| if h == OVERALL_HEAD { OVERALL } else { h as u8 }).collect();
    let header = |th: &[Thresholds]| -> Vec<(u8, f32, f32, Thresholds)> {
        (0..HEADS).map(|h| (head_ids[h], trained.bias[h], max_abs[h], th[h])).collect()
    };
    let draft = LexicalModel::encode(DIM_BITS, &header(&[placeholder; HEADS]), &bytes);
    let model = LexicalModel::from_bytes(&draft).map_err(|e| e.to_string())?;
    debug_assert_eq!(bytes.len(), dim * HEADS);

    // Validation: the held-out project split and the dev sets.
    let mut per_head: Vec<Vec<(f32, bool)>> = vec![Vec::new(); HEADS];
    let mut report: Vec<(String, f64)> = Vec::new();
    let heldout = read_jsonl(&manifest.join("data/corpus_heldout.jsonl"))?;
    let mut overall_heldout = Vec::new();
    for v in &heldout {
        let l = corpus_labels(v);
        let s = model.score(text(v));
        for h in 0..16 {
            per_head[h].push((s.raw[h], l[h].0 > 0.5));
        }
        per_head[OVERALL_HEAD].push((s.overall, l[OVERALL_HEAD].0 > 0.5));
        overall_heldout.push((s.overall, l[OVERALL_HEAD].0 > 0.5));
    }
    report.push(("corpus_heldout (overall head)".into(), average_precision(&overall_heldout).unwrap_or(0.0)));
    for source in
        ["toxicchat_train", "formspring_cyberbullying", "cyberbullying_tweets", "pan12_grooming_valseg"]
    {
        let rows = read_jsonl(&datasets.join(format!("{source}.jsonl")))?;
        let mut overall = Vec::new();
        for v in &rows {
            let Some(y) = v["unsafe"].as_i64().map(|u| u == 1) else { continue };
            let s = model.score(text(v));
            overall.push((s.overall, y));
            per_head[OVERALL_HEAD].push((s.overall, y));
            if let Some(c) = dev_category(source, v) {
                for (h, slot) in per_head.iter_mut().enumerate().take(16) {
                    // A dev row is a positive for its category when unsafe, a negative for every head when safe.
                    if h == c.index() || !y {
                        slot.push((s.raw[h], y && h == c.index()));
                    }
                }
            }
        }
        report.push((format!("{source} (overall head)"), average_precision(&overall).unwrap_or(0.0)));
    }
    println!("validation AUPRC (not eval-only data):");
    for (name, ap) in &report {
        println!("  {name:<44} {ap:.3}");
    }

    // Calibration: per head, the raw probabilities at which precision reaches 0.5, 0.75 and 0.9.
    let mut thresholds = [placeholder; HEADS];
    println!("calibration (raw probability at precision 0.50 / 0.75 / 0.90; AUPRC):");
    for h in 0..HEADS {
        let scored = &per_head[h];
        let mild = threshold_for_precision(scored, 0.5).unwrap_or(0.9);
        let moderate = threshold_for_precision(scored, 0.75).unwrap_or(0.95).max(mild);
        let strong = threshold_for_precision(scored, 0.9).unwrap_or(0.98).max(moderate);
        thresholds[h] = Thresholds { mild, moderate, strong };
        let name = if h == OVERALL_HEAD { "overall" } else { Category::ALL[h].name() };
        let positives = scored.iter().filter(|(_, y)| *y).count();
        println!(
            "  {name:<20} {mild:.3} / {moderate:.3} / {strong:.3}   AUPRC {:.3} ({positives} positives)",
            average_precision(scored).unwrap_or(0.0)
        );
    }
    if validate_only {
        return Ok(());
    }
    let final_bytes = LexicalModel::encode(DIM_BITS, &header(&thresholds), &bytes);
    LexicalModel::from_bytes(&final_bytes).map_err(|e| e.to_string())?;
    std::fs::write(&out, &final_bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), final_bytes.len());
    Ok(())
}
