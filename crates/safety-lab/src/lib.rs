//! Tools that fit and measure Onda's safety models. Nothing here ships in the server: the fitted weights
//! are committed next to the data that made them (`crates/safety/model/`), and the server loads those.

pub mod cache;
pub mod finetune;
pub mod mlp;

use std::path::Path;

use onda_safety::eval::{Row, read_rows};

/// The rows of a dataset in the shared JSONL format, or a message naming the file.
pub fn read_dataset(path: impl AsRef<Path>) -> Result<Vec<Row>, String> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_rows(std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))
}
