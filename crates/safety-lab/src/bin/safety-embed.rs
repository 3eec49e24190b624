//! Embeds datasets into the cache: `cargo run -p onda-safety-lab --release --bin safety-embed -- FILE...`.
//! Prints each cache file's path (little-endian f32 rows, for scratch analysis outside Rust).

use std::process::ExitCode;

use onda_models::Embedder;
use onda_models::fetch::{EMBEDDING_MODEL, FetchOptions, fetch};
use onda_safety_lab::cache::{cache_file_for, embed_all};
use onda_safety_lab::read_dataset;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    // Fetch the model when it is missing (checksummed, like `onda models fetch`).
    let options = FetchOptions::from_env();
    if let Err(e) = fetch(&EMBEDDING_MODEL, &options) {
        eprintln!("error: fetching the embedding model: {e}");
        return ExitCode::FAILURE;
    }
    let embedder = match Embedder::load_default() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e} (run `onda models fetch`)");
            return ExitCode::FAILURE;
        }
    };
    for file in &files {
        let rows = match read_dataset(file) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let label = std::path::Path::new(file).file_stem().and_then(|s| s.to_str()).unwrap_or("data");
        let started = std::time::Instant::now();
        match embed_all(&embedder, label, &texts) {
            Ok(v) => println!(
                "{file}: {} rows in {:.1} s: {}",
                v.len(),
                started.elapsed().as_secs_f64(),
                cache_file_for(embedder.dimension(), label, &texts).display()
            ),
            Err(e) => {
                eprintln!("error: {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
