//! Evaluates the safety engine as it ships (rules, lexical model and, when the embedding model has been
//! fetched, the embedding head) on datasets in the shared JSONL format.
//!
//! `cargo run -p onda-safety-lab --release --bin safety-eval -- [--json] [--evasion] [--no-embedding] FILE...`
//!
//! `--evasion` also measures the flagged rate of the unsafe rows rewritten with leetspeak, homoglyphs,
//! zero-width characters and spaced or dotted letters.
//!
//! Prints measures only, never the texts.

use std::path::Path;
use std::process::ExitCode;

use onda_safety::eval::{evaluate, evaluate_evasion};
use onda_safety::{Engine, LearnedScorer, Lexicons};
use onda_safety_lab::read_dataset;

fn main() -> ExitCode {
    let mut json = false;
    let mut evasion = false;
    let mut files = Vec::new();
    let mut learned_weight = None;
    let mut no_lexical = false;
    let mut no_embedding = false;
    let mut markdown: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--learned-weight" => learned_weight = args.next().and_then(|v| v.parse::<f32>().ok()),
            "--rules-only" => {
                no_lexical = true;
                no_embedding = true;
            }
            "--no-embedding" => no_embedding = true,
            "--markdown" => markdown = args.next(),
            "--json" => json = true,
            "--evasion" => evasion = true,
            "-h" | "--help" => {
                println!(
                    "usage: safety-eval [--json] [--evasion] [--markdown FILE] [--rules-only] [--no-embedding] [--learned-weight W] FILE..."
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
    let scorer: Option<Box<dyn LearnedScorer>> = if no_embedding {
        None
    } else {
        match onda_models::default_safety_scorer() {
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
    let engine = match Engine::new(Lexicons::builtin(), scorer) {
        Ok(engine) => {
            let mut config = engine.config().clone();
            if let Some(w) = learned_weight {
                config.learned_weight = w;
            }
            let engine = engine.with_config(config);
            if no_lexical { engine.with_lexical(None) } else { engine }
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reports = Vec::new();
    let mut typed = Vec::new();
    for file in &files {
        let name = Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or(file).to_string();
        let rows = match read_dataset(file) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let report = evaluate(&engine, &name, &rows);
        if !json {
            print!("{}", report.to_text());
        }
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        let mut ev_report = None;
        // The report rewrites the eval-only and project sets; the large dev sets only with --evasion.
        let dev = onda_safety::eval::dataset_use(&name) == "dev";
        if evasion || (markdown.is_some() && !dev) {
            let ev = evaluate_evasion(&engine, &name, &rows);
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
