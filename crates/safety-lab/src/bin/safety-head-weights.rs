//! Compares weights of the embedding head's nearest safe prototypes (`safe_weight`, see
//! `onda_safety::embedding`): for each, the signal alone (no rules), its AUPRC on the validation data
//! `safety-fit-embedding` uses, and on each dataset named on the command line its average precision, the
//! recall of the unsafe rows at the thresholds where validation precision reached 0.90 and 0.97, and the
//! share of the safe rows over them. Reads the same prototypes as the fit and writes nothing:
//! `cargo run -p onda-safety-lab --release --bin safety-head-weights -- FILE...`

use std::path::Path;
use std::process::ExitCode;

use onda_models::Embedder;
use onda_safety::embedding::embedding_inputs;
use onda_safety::eval::{Row, average_precision};
use onda_safety::{Category, Role};
use onda_safety_lab::cache::embed_all;
use onda_safety_lab::read_dataset;

type Failure = Box<dyn std::error::Error>;

const PROTOTYPES: [&str; 2] =
    ["crates/safety/data/adult_register.jsonl", "crates/safety/data/corpus_train.jsonl"];
const AUTHORED: &str = "crates/safety/data/authored";
const VALIDATION: [&str; 2] = ["crates/safety/data/corpus_heldout.jsonl", "toxicchat_train.jsonl"];
/// The nearest unsafe and safe prototypes kept per input: more than any weight compared reads.
const KEEP: usize = 40;

struct Set {
    vectors: Vec<f32>,
    labels: Vec<Option<Category>>,
    assistant: Vec<bool>,
}

/// The nearest prototypes of one embedding in one set: (similarity, label), sorted descending.
type Near = Vec<(f32, Option<Category>)>;

fn nearest(set: &Set, e: &[f32], role: Role) -> Near {
    let d = e.len();
    let mut all: Near = set
        .vectors
        .chunks_exact(d)
        .zip(set.labels.iter().zip(&set.assistant))
        .filter(|(_, (l, a))| !(l.is_some() && **a && role == Role::Child))
        .map(|(v, (l, _))| (v.iter().zip(e).map(|(a, b)| a * b).sum::<f32>(), *l))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut unsafe_n = 0;
    let mut safe_n = 0;
    all.retain(|(_, l)| {
        let n = if l.is_some() { &mut unsafe_n } else { &mut safe_n };
        *n += 1;
        *n <= KEEP
    });
    all
}

/// Neighbours averaged, as in the shipped head.
const K: usize = 10;
const WEIGHTS: [f32; 6] = [0.5, 0.55, 0.6, 0.75, 0.9, 1.0];

fn mean(v: impl Iterator<Item = f32>, k: usize) -> f32 {
    v.take(k).sum::<f32>() / k as f32
}

/// The head's signal of one input: per set, the mean of the `K` nearest unsafe minus `w` times the mean of
/// the `K` nearest safe, summed over the sets.
fn score(near: &[Near], w: f32) -> f32 {
    near.iter()
        .map(|n| {
            let unsafe_mean = mean(n.iter().filter(|x| x.1.is_some()).map(|x| x.0), K);
            let safe_mean = mean(n.iter().filter(|x| x.1.is_none()).map(|x| x.0), K);
            unsafe_mean - w * safe_mean
        })
        .sum()
}

fn threshold_at_precision(scored: &[(f32, bool)], target: f64) -> f32 {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = sorted.first().map_or(0.0, |s| s.0);
    let mut positives = 0usize;
    for (i, (score, label)) in sorted.iter().enumerate() {
        positives += usize::from(*label);
        if sorted.get(i + 1).is_some_and(|next| next.0 == *score) {
            continue;
        }
        if positives as f64 / (i + 1) as f64 >= target {
            best = *score;
        }
    }
    best
}

/// Per row: the nearest of each of its inputs (whole, passages), per set.
type RowNear = Vec<Vec<Near>>;

fn load_rows(embedder: &Embedder, sets: &[Set], path: &Path) -> Result<(Vec<Row>, Vec<RowNear>), Failure> {
    let rows = read_dataset(path)?;
    let rows: Vec<Row> = rows.into_iter().filter(|r| r.label.is_some()).collect();
    let per_row: Vec<Vec<String>> = rows.iter().map(|r| embedding_inputs(&r.text)).collect();
    let flat: Vec<&str> = per_row.iter().flatten().map(String::as_str).collect();
    let label = format!("{}-weights-inputs", path.file_stem().and_then(|s| s.to_str()).unwrap_or("data"));
    let vectors = embed_all(embedder, &label, &flat)?;
    let mut it = vectors.into_iter();
    let inputs: Vec<Vec<Vec<f32>>> = per_row.iter().map(|p| it.by_ref().take(p.len()).collect()).collect();
    let near: Vec<RowNear> = std::thread::scope(|scope| {
        let chunks: Vec<_> = inputs
            .chunks(inputs.len().div_ceil(2).max(1))
            .zip(rows.chunks(inputs.len().div_ceil(2).max(1)))
            .map(|(ins, rs)| {
                scope.spawn(move || {
                    ins.iter()
                        .zip(rs)
                        .map(|(es, r)| {
                            let role = r.role.unwrap_or_default();
                            es.iter().map(|e| sets.iter().map(|s| nearest(s, e, role)).collect()).collect()
                        })
                        .collect::<Vec<RowNear>>()
                })
            })
            .collect();
        chunks
            .into_iter()
            .map(|h| h.join().map_err(|_| "a scoring thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    Ok((rows, near))
}

/// A row's signal: the strongest of its inputs (the whole and its passages), as the scorer reads it.
fn signal(near: &RowNear, w: f32) -> f32 {
    near.iter().map(|n| score(n, w)).fold(f32::MIN, f32::max)
}

fn run() -> Result<(), Failure> {
    let datasets = std::env::var("ONDA_DATASETS").unwrap_or_else(|_| "../shared/datasets".into());
    let embedder = Embedder::load_default()?;
    let mut files: Vec<std::path::PathBuf> = PROTOTYPES.iter().map(|p| Path::new(p).to_path_buf()).collect();
    let mut authored: Vec<_> = std::fs::read_dir(AUTHORED)
        .map_err(|e| format!("{AUTHORED}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    authored.sort();
    files.extend(authored);
    let mut sets: Vec<Set> =
        (0..2).map(|_| Set { vectors: vec![], labels: vec![], assistant: vec![] }).collect();
    for path in &files {
        let rows = read_dataset(path)?;
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let label = path.file_stem().and_then(|s| s.to_str()).unwrap_or("data");
        let vectors = embed_all(&embedder, label, &texts)?;
        let default_adult = path.ends_with("adult_register.jsonl");
        for (row, v) in rows.iter().zip(vectors) {
            let label = match row.label {
                Some(true) => Some(
                    row.category
                        .as_deref()
                        .and_then(Category::from_name)
                        .ok_or_else(|| format!("{}: unsafe row without a known category", path.display()))?,
                ),
                Some(false) => None,
                None => continue,
            };
            let adult = match row.register.as_deref() {
                Some("adult") => true,
                Some(_) => false,
                None => default_adult,
            };
            let set = &mut sets[usize::from(!adult)];
            set.vectors.extend(v);
            set.labels.push(label);
            set.assistant.push(row.role == Some(Role::Assistant));
        }
    }
    let mut validation: Vec<RowNear> = Vec::new();
    let mut validation_labels: Vec<bool> = Vec::new();
    for name in VALIDATION {
        let path =
            if name.contains('/') { Path::new(name).to_path_buf() } else { Path::new(&datasets).join(name) };
        let (rows, near) = load_rows(&embedder, &sets, &path)?;
        validation_labels.extend(rows.iter().map(|r| r.label == Some(true)));
        validation.extend(near);
        eprintln!("validation {}", path.display());
    }
    let dev_files: Vec<String> = std::env::args().skip(1).collect();
    let mut dev = Vec::new();
    for f in &dev_files {
        let (rows, near) = load_rows(&embedder, &sets, Path::new(f))?;
        eprintln!("dev {f}");
        let name = Path::new(f).file_stem().map_or_else(|| f.clone(), |s| s.to_string_lossy().to_string());
        dev.push((name, rows, near));
    }
    for w in WEIGHTS {
        let val: Vec<(f32, bool)> =
            validation.iter().map(|n| signal(n, w)).zip(validation_labels.iter().copied()).collect();
        let t90 = threshold_at_precision(&val, 0.9);
        let t97 = threshold_at_precision(&val, 0.97).max(t90);
        let mut line =
            format!("safe_weight {w}: validation AUPRC {:.3}", average_precision(&val).unwrap_or(0.0));
        for (name, rows, near) in &dev {
            let scored: Vec<(f32, bool)> =
                near.iter().map(|n| signal(n, w)).zip(rows.iter().map(|r| r.label == Some(true))).collect();
            let pos = scored.iter().filter(|s| s.1).count().max(1) as f32;
            let neg = scored.iter().filter(|s| !s.1).count().max(1) as f32;
            let rate = |t: f32, label: bool| {
                scored.iter().filter(|s| s.1 == label && s.0 >= t).count() as f32
                    / if label { pos } else { neg }
            };
            line += &format!(
                " | {name}: AP {:.3}, recall {:.2} / {:.2}, false positives {:.3} / {:.3}",
                average_precision(&scored).unwrap_or(0.0),
                rate(t90, true),
                rate(t97, true),
                rate(t90, false),
                rate(t97, false)
            );
        }
        println!("{line}");
    }
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
