//! Chat models behind one small streaming trait: OpenAI, Anthropic, and the embedded local model.
//!
//! A provider turns a [`ChatRequest`] into a stream of text deltas. [`ChatRouter`] picks providers in
//! the configured order, skips cloud providers for families without cloud-AI consent, and falls over
//! to the next provider when one fails before its reply is shown.

use std::fmt;
use std::pin::Pin;

use futures::Stream;

pub mod anthropic;
pub mod local;
pub mod openai;
pub mod pii;
pub mod router;
pub mod testing;
mod wire;

pub use crate::config::ProviderName;
pub use anthropic::{AnthropicProvider, AnthropicSettings};
pub use openai::{OpenAiProvider, OpenAiSettings};
pub use router::{BreakerSettings, BreakerState, ChatRouter, OpenedStream, RouterSettings, Timeouts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// One reply to generate. The first message may be the system prompt.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub temperature: f32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("not configured")]
    NotConfigured,
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("malformed stream: {0}")]
    Protocol(String),
    #[error("connection dropped mid-reply")]
    Dropped,
    #[error("skipped while its circuit breaker is open")]
    CircuitOpen,
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// A short, stable name of the kind of failure, for logs and metrics (never any text of a message).
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::NotConfigured => "not_configured",
            ProviderError::Connect(_) => "connect",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Status(_) => "status",
            ProviderError::Protocol(_) => "protocol",
            ProviderError::Dropped => "dropped",
            ProviderError::CircuitOpen => "circuit_open",
            ProviderError::Other(_) => "other",
        }
    }
}

/// Text deltas of a reply, in order; an `Err` ends the stream.
pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<String, ProviderError>> + Send>>;

#[async_trait::async_trait]
pub trait ChatProvider: Send + Sync + fmt::Debug {
    fn name(&self) -> ProviderName;
    /// The model this provider will answer with (for the stored message).
    fn model(&self) -> String;
    /// Whether a request leaves this machine (needs the family's cloud-AI consent).
    fn is_cloud(&self) -> bool {
        self.name() != ProviderName::Local
    }
    /// Starts a reply. Errors before the stream is returned mean nothing was generated.
    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError>;
}
