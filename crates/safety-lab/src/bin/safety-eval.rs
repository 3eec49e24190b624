//! Evaluates the safety engine as it ships (rules, lexical model and, when the embedding model has been
//! fetched, the embedding head) on datasets in the shared JSONL format.
//!
//! `cargo run -p onda-safety-lab --release --bin safety-eval -- [--json] [--evasion] [--no-embedding] FILE...`
//!
//! `--evasion` also measures the flagged rate of the unsafe rows rewritten with leetspeak, homoglyphs,
//! zero-width characters and spaced or dotted letters.
//!
//! `--no-offensive` leaves the offensive-language word model out of `unsafe_score`; `--rules-only` leaves
//! out every learned model.
//!
//! `--dump-scores DIR` also writes each row's level, unsafe score and reasons to `DIR/NAME.scores.jsonl`.
//!
//! `ONDA_EMBEDDING_HEAD=FILE` evaluates another fitted head than the built-in one.
//!
//! Prints measures only, never the texts.

use std::path::Path;
use std::process::ExitCode;

use onda_models::Embedder;
use onda_safety::eval::Row;
use onda_safety::eval::{evaluate, evaluate_evasion};
use onda_safety::evasion::Evasion;
use onda_safety::{EmbeddingHead, EmbeddingScorer};
use onda_safety::{Engine, LearnedScorer};
use onda_safety_lab::cache::PrecomputedEmbedder;
use onda_safety_lab::read_dataset;

fn main() -> ExitCode {
    let mut json = false;
    let mut evasion = false;
    let mut files = Vec::new();
    let mut learned_weight = None;
    let mut no_lexical = false;
    let mut no_embedding = false;
    let mut no_offensive = false;
    let mut markdown: Option<String> = None;
    let mut dump_scores: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--learned-weight" => learned_weight = args.next().and_then(|v| v.parse::<f32>().ok()),
            "--rules-only" => {
                no_lexical = true;
                no_embedding = true;
                no_offensive = true;
            }
            "--no-offensive" => no_offensive = true,
            "--no-embedding" => no_embedding = true,
            "--markdown" => markdown = args.next(),
            "--dump-scores" => dump_scores = args.next(),
            "--json" => json = true,
            "--evasion" => evasion = true,
            "-h" | "--help" => {
                println!(
                    "usage: safety-eval [--json] [--evasion] [--markdown FILE] [--dump-scores DIR] [--rules-only] [--no-embedding] [--no-offensive] [--learned-weight W] FILE..."
                );
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("usage: safety-eval [--json] [--evasion] FILE...");
        return ExitCode::from(2);
    }
    let mut datasets = Vec::new();
    for file in &files {
        let name = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file).to_string();
        match read_dataset(file) {
            Ok(rows) => datasets.push((name, rows)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Which datasets are also assessed rewritten (the evasion report): every one with --evasion; in the
    // markdown report the eval-only and project sets, the large dev sets only with --evasion.
    let rewritten =
        |name: &str| evasion || (markdown.is_some() && onda_safety::eval::dataset_use(name) != "dev");
    let scorer: Option<Box<dyn LearnedScorer>> = if no_embedding {
        None
    } else {
        match embedding_scorer(&datasets, &rewritten) {
            Ok(Some(scorer)) => Some(Box::new(scorer)),
            Ok(None) => {
                eprintln!(
                    "note: the embedding model is not fetched (onda models fetch): rules and lexical model only"
                );
                None
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let engine = match Engine::builtin().map(|e| e.with_scorer(scorer)) {
        Ok(engine) => {
            let mut config = engine.config().clone();
            if let Some(w) = learned_weight {
                config.learned_weight = w;
            }
            let engine = engine.with_config(config);
            let engine = if no_offensive { engine.with_offensive(None) } else { engine };
            if no_lexical { engine.with_lexical(None) } else { engine }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports = Vec::new();
    let mut typed = Vec::new();
    for (name, rows) in &datasets {
        let (name, rows) = (name.clone(), rows.as_slice());
        if let Some(dir) = &dump_scores
            && let Err(e) = write_scores(&engine, Path::new(dir), &name, rows)
        {
            eprintln!("error: {dir}: {e}");
            return ExitCode::FAILURE;
        }
        let report = evaluate(&engine, &name, rows);
        if !json {
            print!("{}", report.to_text());
        }
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        let mut ev_report = None;
        if rewritten(&name) {
            let ev = evaluate_evasion(&engine, &name, rows);
            if !json {
                print!("{}", ev.to_text());
            }
            value["evasion"] = serde_json::to_value(&ev).unwrap_or_default();
            ev_report = Some(ev);
        }
        reports.push(value);
        typed.push((report, ev_report));
    }
    if let Some(path) = markdown {
        let text = onda_safety::eval::markdown(&typed);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: {path}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {path}");
    }
    if json {
        match serde_json::to_string_pretty(&reports) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Writes `DIR/NAME.scores.jsonl`: per row, in order, the verdict's level and unsafe score and the label
/// (for scratch analysis of how signals combine; no text is written).
fn write_scores(engine: &Engine, dir: &Path, name: &str, rows: &[Row]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.scores.jsonl")))?);
    for row in rows {
        let verdict = engine.assess(&row.text, &row.context());
        let line = serde_json::json!({
            "level": verdict.level,
            "score": verdict.unsafe_score,
            "unsafe": row.label,
            "reasons": verdict.reasons,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// The embedding head over the real model, with every text the evaluation will assess (and, with
/// `rewrites` of the dataset's name, every evasion rewrite of it) embedded beforehand in batches. None when the model is missing.
fn embedding_scorer(
    datasets: &[(String, Vec<Row>)],
    rewrites: &dyn Fn(&str) -> bool,
) -> Result<Option<EmbeddingScorer<PrecomputedEmbedder>>, Box<dyn std::error::Error>> {
    let Some(model) = onda_models::embed::embedding_model_in(&onda_models::default_models_dir()) else {
        return Ok(None);
    };
    let mut embedder = PrecomputedEmbedder::new(Embedder::load(&model)?);
    for (name, rows) in datasets {
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        embedder.precompute(name, &texts)?;
        if rewrites(name) {
            for evasion in Evasion::ALL {
                let rewritten: Vec<String> = texts.iter().map(|t| evasion.apply(t)).collect();
                let refs: Vec<&str> = rewritten.iter().map(String::as_str).collect();
                embedder.precompute(&format!("{name}-{}", evasion.name()), &refs)?;
            }
        }
    }
    // ONDA_EMBEDDING_HEAD names a head file other than the built-in one (to compare fits without a rebuild).
    let head = match std::env::var_os("ONDA_EMBEDDING_HEAD") {
        Some(path) => EmbeddingHead::from_bytes(&std::fs::read(&path)?)?,
        None => EmbeddingHead::builtin()?,
    };
    Ok(Some(EmbeddingScorer::new(embedder, head)?))
}
