//! Prints the engine's verdict for every row of a dataset, one JSON line per row in order
//! (`{"level", "score", "lexical"}`), for fitting ensembles on top of it. Never prints the texts.

use std::process::ExitCode;

use onda_safety::eval::read_rows;
use onda_safety::{Context, Engine};

fn main() -> ExitCode {
    let Some(file) = std::env::args().nth(1) else {
        eprintln!("usage: safety-scores FILE");
        return ExitCode::from(2);
    };
    let engine = match Engine::builtin() {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rows = match std::fs::File::open(&file)
        .map_err(|e| e.to_string())
        .and_then(|f| read_rows(std::io::BufReader::new(f)).map_err(|e| e.to_string()))
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for row in &rows {
        let ctx = Context { role: row.role.unwrap_or_default(), ..Context::default() };
        let v = engine.assess(&row.text, &ctx);
        println!("{}", serde_json::json!({ "level": v.level, "score": v.unsafe_score }));
    }
    ExitCode::SUCCESS
}
