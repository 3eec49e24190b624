//! The embedded local model as a chat provider: a llama-architecture GGUF run on the CPU by
//! `onda_models`. Requests never leave the machine, so it needs no cloud consent and gets the
//! unscrubbed conversation.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use onda_models::{ChatModel, GenerationParams, Message, PromptCache, Role};
use sha2::{Digest, Sha256};

use super::{ChatProvider, ChatRequest, ChatRole, DeltaStream, ProviderError, ProviderName};
use crate::config::Config;

/// How many system prompts keep their computed prefix (one per persona, age band and mode is plenty).
const CACHED_SYSTEM_PROMPTS: usize = 8;

#[derive(Debug)]
pub struct LocalProvider {
    inner: Arc<Inner>,
    label: String,
}

#[derive(Debug)]
struct Inner {
    model: ChatModel,
    /// Computed prefixes of recent system prompts, newest last, keyed by the prompt's hash: a system
    /// prompt of a few hundred tokens costs seconds to compute and ~0.15 s to reuse.
    prompts: Mutex<VecDeque<(String, Arc<PromptCache>)>>,
}

/// Where the configured local model lives: `ONDA_LOCAL_MODEL` (absolute, or relative to the models
/// folder), else the default model in the models folder.
pub fn model_path(config: &Config) -> PathBuf {
    match &config.local_model {
        Some(path) if path.is_absolute() || path.is_file() => path.clone(),
        Some(path) => config.models_dir.join(path),
        None => config.models_dir.join(onda_models::fetch::CHAT_MODEL_FILE),
    }
}

impl LocalProvider {
    /// Loads the model at `path` (blocking: about a second).
    pub fn load(path: &Path) -> Result<Self, onda_models::Error> {
        let model = ChatModel::load(path)?;
        let label = path.file_name().map_or_else(|| model.name().to_string(), |f| f.to_string_lossy().into());
        Ok(Self { inner: Arc::new(Inner { model, prompts: Mutex::new(VecDeque::new()) }), label })
    }

    /// The configured model when its file is present; `None` (logged) when it is absent or broken, so
    /// the server still starts and the other providers (or the "no model" answer) take over.
    pub async fn from_config(config: &Config) -> Option<Arc<dyn ChatProvider>> {
        let path = model_path(config);
        if !path.is_file() {
            tracing::info!(path = %path.display(), "no local chat model: run `onda models fetch` to add it");
            return None;
        }
        match tokio::task::spawn_blocking(move || Self::load(&path)).await {
            Ok(Ok(provider)) => {
                tracing::info!(model = %provider.label, "local chat model loaded");
                Some(Arc::new(provider))
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "the local chat model could not be loaded");
                None
            }
            Err(err) => {
                tracing::error!(error = %err, "loading the local chat model panicked");
                None
            }
        }
    }
}

impl Inner {
    /// The computed prefix of this system prompt, from the cache or computed now (blocking).
    fn prefix(&self, system_prompt: &str) -> Option<Arc<PromptCache>> {
        let key = hex::encode(Sha256::digest(system_prompt.as_bytes()));
        if let Ok(prompts) = self.prompts.lock()
            && let Some((_, cache)) = prompts.iter().find(|(k, _)| *k == key)
        {
            return Some(cache.clone());
        }
        let cache = Arc::new(self.model.prefill_system(system_prompt).ok()?);
        if let Ok(mut prompts) = self.prompts.lock() {
            if prompts.len() >= CACHED_SYSTEM_PROMPTS {
                prompts.pop_front();
            }
            prompts.push_back((key, cache.clone()));
        }
        Some(cache)
    }
}

fn to_model_message(message: &super::ChatMessage) -> Message {
    let role = match message.role {
        ChatRole::System => Role::System,
        ChatRole::User => Role::User,
        ChatRole::Assistant => Role::Assistant,
    };
    Message { role, content: message.content.clone() }
}

#[async_trait::async_trait]
impl ChatProvider for LocalProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Local
    }

    fn model(&self) -> String {
        self.label.clone()
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let messages: Vec<Message> = request.messages.iter().map(to_model_message).collect();
        let system =
            request.messages.first().filter(|m| m.role == ChatRole::System).map(|m| m.content.clone());
        let params = GenerationParams {
            temperature: f64::from(request.temperature),
            max_tokens: request.max_tokens as usize,
            ..GenerationParams::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, ProviderError>>(64);
        let inner = self.inner.clone();
        // Generation (and computing a new system-prompt prefix) runs on a blocking thread; the model
        // itself lets one generation run at a time.
        tokio::task::spawn_blocking(move || {
            let prefix = system.and_then(|system| inner.prefix(&system));
            let result = inner.model.generate(&messages, prefix.as_deref(), &params, |text| {
                // A closed receiver means the conversation stopped listening: stop generating.
                if tx.blocking_send(Ok(text.to_string())).is_err() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            if let Err(err) = result {
                tracing::warn!(error = %err, "the local model failed");
                let _ = tx.blocking_send(Err(ProviderError::Other("the local model failed".into())));
            }
        });
        Ok(Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx))))
    }
}
