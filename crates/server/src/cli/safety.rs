//! `onda safety classify` and `onda safety eval`: the safety engine from the command line.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use onda_safety::eval::{evaluate, read_rows};
use onda_safety::{Context, Engine, Role, Verdict};
use serde::Deserialize;

#[derive(Subcommand, Debug)]
pub enum SafetyAction {
    /// Classify JSON lines from standard input (`{"text", "role"}`, role `child` (default) or
    /// `assistant`); one JSON verdict per line out, in order. A malformed line gets `{"error": ...}`.
    Classify,
    /// Evaluate the engine on datasets in the shared JSONL format (`text`, `unsafe`, `category`, `raw`).
    Eval {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Deserialize)]
struct Input {
    text: String,
    #[serde(default)]
    role: Role,
}

/// The output line of one classified input.
pub fn verdict_json(v: &Verdict) -> serde_json::Value {
    serde_json::json!({
        "level": v.level,
        "action": v.action,
        "score": (f64::from(v.unsafe_score) * 10_000.0).round() / 10_000.0,
        "categories": v.categories,
        "reasons": v.reasons,
    })
}

/// Classifies each line of `input` and writes one JSON line per non-blank input line to `output`.
pub fn classify(engine: &Engine, input: impl BufRead, mut output: impl Write) -> anyhow::Result<()> {
    for (i, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        let out = match serde_json::from_str::<Input>(&line) {
            Ok(input) => {
                verdict_json(&engine.assess(&input.text, &Context { role: input.role, ..Context::default() }))
            }
            Err(e) => serde_json::json!({ "error": format!("line {}: {e}", i + 1) }),
        };
        writeln!(output, "{out}").context("writing standard output")?;
    }
    output.flush().context("writing standard output")?;
    Ok(())
}

/// Runs a safety command with the engine the server runs (with the embedding head when the model is in
/// `models_dir`).
pub fn run(action: SafetyAction, models_dir: &std::path::Path) -> anyhow::Result<()> {
    let engine = crate::domain::safety_engine(true, models_dir)?;
    match action {
        SafetyAction::Classify => classify(&engine, std::io::stdin().lock(), std::io::stdout().lock()),
        SafetyAction::Eval { files, json } => {
            let mut reports = Vec::new();
            for file in &files {
                let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
                let rows = read_rows(std::io::BufReader::new(f))
                    .with_context(|| format!("reading {}", file.display()))?;
                let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("dataset").to_string();
                let report = evaluate(&engine, &name, &rows);
                if !json {
                    print!("{}", report.to_text());
                }
                reports.push(report);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            }
            Ok(())
        }
    }
}
