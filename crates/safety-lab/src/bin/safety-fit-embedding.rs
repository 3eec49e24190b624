//! Fits the safety engine's embedding head (`crates/safety/model/embedding.bin`):
//! `cargo run -p onda-safety-lab --release --bin safety-fit-embedding` from the repository root.
//!
//! - Prototypes: the project's own examples, never a public set: `crates/safety/data/adult_register.jsonl`,
//!   `corpus_train.jsonl` and `authored/*.jsonl`, in two sets by register (adults'; children's and the
//!   assistant's).
//! - The classifier read beside the neighbours ([`onda_safety::embedding::Classifier`]): fitted on the same
//!   prototypes and four of the public `train` sets ([`PUBLIC_TRAIN`]).
//! - Validation (thresholds and distributions): the project's held-out split and the `dev` set
//!   toxicchat_train. No eval-only set is read.
//!
//! The embeddings are cached in `~/.cache/onda/embeddings`; the model is fetched when missing.

use std::path::Path;
use std::process::ExitCode;

use onda_models::Embedder;
use onda_models::fetch::{EMBEDDING_MODEL, FetchOptions, fetch};
use onda_safety::embedding::{Classifier, Distribution, EmbeddingHead, Prototypes, embedding_inputs};
use onda_safety::eval::{Row, average_precision};
use onda_safety::{Category, Engine};
use onda_safety_lab::cache::embed_all;
use onda_safety_lab::mlp::{self, Example, Settings};
use onda_safety_lab::read_dataset;

/// Neighbours averaged, and how much the nearest safe prototypes count: chosen on toxicchat_train and the
/// held-out split (k 3, 5, 10, 20; weight 0, 0.5, 1), then the weight again with `safety-head-weights` on
/// the children's dev sets (2026-11-28: 0.5 -> 0.6, validation AUPRC 0.910 -> 0.912, and ordinary family
/// talk no longer sits nearer abuse than the harmless examples of it; `docs/safety.md`, step 9).
const K: usize = 10;
const SAFE_WEIGHT: f32 = 0.6;

/// The precision on the validation data at which the signal becomes a mild, moderate and strong score.
/// Chosen on toxicchat_train: at 0.50 / 0.75 / 0.90 the false-positive rate at level >= 2 went from 5.6%
/// (rules and lexical model) to 12.7%. The moderate one 0.90 -> 0.91 when 1,625 prototypes joined (step 22):
/// at 0.90 its threshold fell with the first 1,610 of them (0.435 -> 0.426), and ordinary talk read as abuse
/// or self-harm reached level 3 ("my dad yelled because i broke a glass"; the held-out split's harmless rows
/// at level >= 3 3.0% -> 3.7%); at 0.91 the threshold is 0.429 and the held-out split is back at 3.0%.
const PRECISIONS: [f64; 3] = [0.75, 0.91, 0.97];
/// The precision on the validation data at which the overall unsafe score (both layers) becomes a redirect
/// of a child's message (level 2), a moderate and a strong score. The last two chosen on toxicchat_train and
/// the held-out split: from 0.90 / 0.97 the recall at level >= 3 rose (toxicchat_train 0.40 -> 0.46,
/// held-out 0.76 -> 0.89) with the false positives at level >= 3 about the same (2.4% -> 2.4%, 6.3% -> 6.7%);
/// from 0.75 / 0.90 recall rose more but the false positives at level >= 2 on toxicchat_train nearly doubled
/// (7.1% -> 13.4%). The redirect's on the dev sets against 0.75 (`docs/safety.md`, step 10), then 0.80 ->
/// 0.77 when the classifier joined the learned rank (step 21): at 0.80 the children's dev sets lost flags
/// (kids_chatbot's blind half 0.746 -> 0.725) as the pooled validation data ranked a little differently; at
/// 0.77 its flagged rate is kept with fewer false positives (13.8% -> 11.5% at level >= 2), at 0.75
/// toxicchat_train's harmless rows at level >= 2 rose 9.2% -> 11.0%. `ONDA_REDIRECT_PRECISION` overrides it, to
/// compare.
const COMBINED_PRECISIONS: [f64; 3] = [0.77, 0.9, 0.97];

/// The prototype files: rows go to the adults' set or the children's by their `register` field (a file's
/// rows without one: adult_register is adults', the others children's).
const PROTOTYPES: [&str; 2] =
    ["crates/safety/data/adult_register.jsonl", "crates/safety/data/corpus_train.jsonl"];
/// The folder of the further authored prototype files (every `*.jsonl` in it, in name order).
const AUTHORED: &str = "crates/safety/data/authored";
/// The classifier's rank's weight in the learned rank (the neighbours' rank has the rest). Chosen on the dev
/// sets in a scratch experiment (2026-12-07, scikit-learn's network of the same shape on the same
/// embeddings, 0.3 against 0.5): the learned rank's AUPRC alone, before the rules, rose on every dev set but
/// pan12 (toxicchat_train 0.668 -> 0.727, formspring 0.213 -> 0.259, kids_risky 0.894 -> 0.934,
/// kids_chatbot's blind half 0.948 -> 0.967) and fell on none at 0.3; at 0.5 toxicchat_train and
/// family_everyday rose less. The classifier alone ranked toxicchat_train at 0.54 and the neighbours at
/// 0.67: it adds to them, it does not replace them (`docs/safety.md`, step 21, has the whole engine).
const CLASSIFIER_WEIGHT: f32 = 0.3;
/// The public `train` sets the classifier also learns from, with the weight each has in all, as a share of
/// the prototypes' (split across its rows). Without them, toxicchat_train's AUPRC in the scratch experiment
/// rose only 0.668 -> 0.683 at weight 0.3, and fell below the neighbours' alone at 0.5 (0.648).
const PUBLIC_TRAIN: [(&str, f32); 4] = [
    ("davidson_hate_offensive.jsonl", 0.3),
    ("cssrs_reddit500.jsonl", 0.2),
    ("forbidden_questions.jsonl", 0.15),
    ("jailbreak_prompts.jsonl", 0.1),
];
const VALIDATION: [&str; 2] = ["crates/safety/data/corpus_heldout.jsonl", "toxicchat_train.jsonl"];
const OUTPUT: &str = "crates/safety/model/embedding.bin";

type Failure = Box<dyn std::error::Error>;

fn embed_rows(embedder: &Embedder, path: &Path, rows: &[Row]) -> Result<Vec<Vec<f32>>, Failure> {
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let label = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
    embed_all(embedder, label, &texts)
}

/// The embeddings of each row's passages (what the scorer embeds besides the whole text), per row.
fn embed_passages(embedder: &Embedder, path: &Path, rows: &[Row]) -> Result<Vec<Vec<Vec<f32>>>, Failure> {
    let per_row: Vec<Vec<String>> =
        rows.iter().map(|r| embedding_inputs(&r.text).into_iter().skip(1).collect()).collect();
    let flat: Vec<&str> = per_row.iter().flatten().map(String::as_str).collect();
    let label = format!("{}-passages", path.file_stem().and_then(|s| s.to_str()).unwrap_or("data"));
    let mut vectors = embed_all(embedder, &label, &flat)?.into_iter();
    Ok(per_row.iter().map(|p| vectors.by_ref().take(p.len()).collect()).collect())
}

/// A public `train` row's label for the classifier; None leaves the row out. davidson: hate against
/// "neither", its "offensive" tweets left out (mostly swear words, which the rules read, and a child's
/// profanity is a redirect, not a harm); cssrs: ideation, behaviour and attempts against indicators, its
/// supportive replies left out (they talk of suicide to help); forbidden_questions: its advice and
/// lobbying areas are harmless; jailbreak_prompts are all attempts.
fn public_label(file: &str, row: &Row) -> Option<bool> {
    match file {
        "davidson_hate_offensive.jsonl" => match row.category.as_deref()? {
            "hate" => Some(true),
            "safe" => Some(false),
            _ => None,
        },
        "cssrs_reddit500.jsonl" => match row.raw["cssrs_label"].as_str()? {
            "Supportive" => None,
            "Indicator" => Some(false),
            _ => Some(true),
        },
        "forbidden_questions.jsonl" => {
            let area = row.raw["content_policy_name"].as_str()?;
            Some(!matches!(
                area,
                "Political Lobbying"
                    | "Legal Opinion"
                    | "Financial Advice"
                    | "Health Consultation"
                    | "Gov Decision"
            ))
        }
        "jailbreak_prompts.jsonl" => Some(true),
        _ => None,
    }
}

/// The lowest signal at which the precision of "signal >= threshold" is still at least `target`
/// (scanning from the top); the highest signal when it never is.
fn threshold_at_precision(scored: &[(f32, bool)], target: f64) -> f32 {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = sorted.first().map_or(0.0, |s| s.0);
    let mut positives = 0usize;
    for (i, (score, label)) in sorted.iter().enumerate() {
        positives += usize::from(*label);
        // Only cut between distinct scores.
        if sorted.get(i + 1).is_some_and(|next| next.0 == *score) {
            continue;
        }
        if positives as f64 / (i + 1) as f64 >= target {
            best = *score;
        }
    }
    best
}

fn run() -> Result<(), Failure> {
    let datasets = std::env::var("ONDA_DATASETS").unwrap_or_else(|_| "../shared/datasets".into());
    fetch(&EMBEDDING_MODEL, &FetchOptions::from_env())?;
    let embedder = Embedder::load_default()?;

    let mut files: Vec<std::path::PathBuf> = PROTOTYPES.iter().map(|p| Path::new(p).to_path_buf()).collect();
    let mut authored: Vec<_> = std::fs::read_dir(AUTHORED)
        .map_err(|e| format!("{AUTHORED}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    authored.sort();
    files.extend(authored);
    // Set 0: adults' register; set 1: children's register and the assistant.
    let mut sets = vec![Prototypes::default(), Prototypes::default()];
    // The classifier's examples: (embedding, unsafe, weight).
    let mut training: Vec<(Vec<f32>, bool, f32)> = Vec::new();
    for path in &files {
        let rows = read_dataset(path)?;
        let default_adult = path.ends_with("adult_register.jsonl");
        let vectors = embed_rows(&embedder, path, &rows)?;
        let mut counts = [0usize; 2];
        for (row, vector) in rows.iter().zip(vectors) {
            let label = match row.label {
                Some(true) => match row.category.as_deref().and_then(Category::from_name) {
                    Some(c) => Some(c),
                    None => {
                        return Err(format!("{}: unsafe row without a known category", path.display()).into());
                    }
                },
                Some(false) => None,
                None => continue,
            };
            let adult = match row.register.as_deref() {
                Some("adult") => true,
                Some("child") => false,
                Some(other) => return Err(format!("{}: unknown register {other:?}", path.display()).into()),
                None => default_adult,
            };
            let index = usize::from(!adult);
            let set = &mut sets[index];
            counts[index] += 1;
            training.push((vector.clone(), label.is_some(), 1.0));
            set.vectors.push(vector);
            set.labels.push(label);
            set.assistant.push(row.role == Some(onda_safety::Role::Assistant));
        }
        eprintln!("{}: {} adults' and {} children's prototypes", path.display(), counts[0], counts[1]);
    }
    let mut head = EmbeddingHead::new(embedder.dimension(), K, SAFE_WEIGHT, &sets);

    let prototypes = training.len() as f32;
    for (file, share) in PUBLIC_TRAIN {
        let path = Path::new(&datasets).join(file);
        let rows = read_dataset(&path)?;
        let vectors = embed_rows(&embedder, &path, &rows)?;
        let labeled: Vec<(Vec<f32>, bool)> = rows
            .iter()
            .zip(vectors)
            .filter_map(|(row, vector)| public_label(file, row).map(|label| (vector, label)))
            .collect();
        let weight = share * prototypes / labeled.len().max(1) as f32;
        eprintln!("{}: {} rows for the classifier, weight {weight:.3} each", path.display(), labeled.len());
        training.extend(labeled.into_iter().map(|(vector, label)| (vector, label, weight)));
    }
    let examples: Vec<Example<'_>> =
        training.iter().map(|(v, y, w)| Example { embedding: v, unsafe_: *y, weight: *w }).collect();
    let started = std::time::Instant::now();
    let network = mlp::fit(&examples, &Settings::default())?;
    eprintln!("classifier: {} examples in {:.0} s", examples.len(), started.elapsed().as_secs_f64());

    // The rules' score as the engine combines it with the head's signal: before the offensive-language
    // word model, which ranks afterwards and is no part of the calibration.
    let rules = Engine::builtin()?.with_offensive(None);
    // Each validation row as the scorer reads it: the whole message and its passages.
    let mut validation: Vec<(Vec<Vec<f32>>, onda_safety::Role, bool)> = Vec::new();
    let mut rules_scores: Vec<(f32, bool)> = Vec::new();
    for name in VALIDATION {
        let path =
            if name.contains('/') { Path::new(name).to_path_buf() } else { Path::new(&datasets).join(name) };
        let rows = read_dataset(&path)?;
        let vectors = embed_rows(&embedder, &path, &rows)?;
        let passages = embed_passages(&embedder, &path, &rows)?;
        for ((row, vector), passages) in rows.iter().zip(vectors).zip(passages) {
            let Some(label) = row.label else { continue };
            let ctx = row.context();
            let mut embeddings = vec![vector];
            embeddings.extend(passages);
            validation.push((embeddings, ctx.role, label));
            rules_scores.push((rules.assess(&row.text, &ctx).unsafe_score, label));
        }
        eprintln!("{}: {} rows", path.display(), rows.len());
    }
    // As the scorer reads each message: the neighbours' strongest signal over the whole and its passages,
    // and the classifier's strongest logit.
    head.classifier =
        Some(Classifier { mlp: network, weight: 0.0, logit_distribution: Distribution::default() });
    let read: Vec<(onda_safety::embedding::Signal, bool)> = validation
        .iter()
        .map(|(embeddings, role, label)| (head.strongest_signal(embeddings, *role), *label))
        .collect();
    let signals: Vec<(f32, bool)> = read.iter().map(|(s, label)| (s.value, *label)).collect();
    let logits: Vec<(f32, bool)> =
        read.iter().map(|(s, label)| (s.logit.unwrap_or(f32::MIN), *label)).collect();
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    println!(
        "validation: AUPRC neighbours {}, classifier {}",
        show(average_precision(&signals)),
        show(average_precision(&logits))
    );
    // ONDA_CLASSIFIER_WEIGHT overrides the weight, to compare (0: the neighbours' ranking alone).
    let weight = std::env::var("ONDA_CLASSIFIER_WEIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLASSIFIER_WEIGHT);
    if let Some(c) = head.classifier.as_mut() {
        c.weight = weight;
        c.logit_distribution = Distribution::of(&logits.iter().map(|s| s.0).collect::<Vec<_>>());
    }
    // ONDA_SIGNAL_PRECISIONS ("0.75,0.91,0.97") overrides the three, to compare.
    let signal_precisions = std::env::var("ONDA_SIGNAL_PRECISIONS")
        .ok()
        .and_then(|v| v.split(',').map(|p| p.trim().parse::<f64>().ok()).collect::<Option<Vec<_>>>())
        .and_then(|v| <[f64; 3]>::try_from(v).ok())
        .unwrap_or(PRECISIONS);
    head.thresholds = signal_precisions.map(|p| threshold_at_precision(&signals, p));
    // Keep the thresholds ordered even where precision is not monotonic.
    head.thresholds[1] = head.thresholds[1].max(head.thresholds[0]);
    head.thresholds[2] = head.thresholds[2].max(head.thresholds[1]);
    head.signal_distribution = Distribution::of(&signals.iter().map(|s| s.0).collect::<Vec<_>>());
    head.rules_distribution = Distribution::of(&rules_scores.iter().map(|s| s.0).collect::<Vec<_>>());

    let ranks: Vec<(f32, bool)> = read.iter().map(|(s, label)| (head.rank(*s), *label)).collect();
    let combined: Vec<(f32, bool)> =
        ranks.iter().zip(&rules_scores).map(|(s, r)| (head.combine(r.0, s.0), s.1)).collect();
    let mut precisions = COMBINED_PRECISIONS;
    if let Some(p) = std::env::var("ONDA_REDIRECT_PRECISION").ok().and_then(|v| v.parse().ok()) {
        precisions[0] = p;
    }
    head.combined_thresholds = precisions.map(|p| threshold_at_precision(&combined, p));
    head.combined_thresholds[1] = head.combined_thresholds[1].max(head.combined_thresholds[0]);
    head.combined_thresholds[2] = head.combined_thresholds[2].max(head.combined_thresholds[1]);
    println!(
        "validation ({} rows): AUPRC signal {}, learned rank {}, rules {}, combined {}; thresholds at precision {signal_precisions:?}: {:.4} / {:.4} / {:.4}",
        signals.len(),
        show(average_precision(&signals)),
        show(average_precision(&ranks)),
        show(average_precision(&rules_scores)),
        show(average_precision(&combined)),
        head.thresholds[0],
        head.thresholds[1],
        head.thresholds[2],
    );
    println!(
        "combined score thresholds at precision {precisions:?}: {:.4} / {:.4} / {:.4}",
        head.combined_thresholds[0], head.combined_thresholds[1], head.combined_thresholds[2]
    );
    let bytes = head.to_bytes();
    // ONDA_HEAD_OUTPUT writes the head elsewhere (to compare fits with `safety-eval`'s ONDA_EMBEDDING_HEAD).
    let output = std::env::var("ONDA_HEAD_OUTPUT").unwrap_or_else(|_| OUTPUT.to_string());
    std::fs::write(&output, &bytes).map_err(|e| format!("{output}: {e}"))?;
    println!("wrote {output} ({} bytes)", bytes.len());
    Ok(())
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
