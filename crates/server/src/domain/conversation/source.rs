//! Where replies come from: the seam between the conversation and the model providers.
//!
//! The conversation asks a [`ReplySource`] for a stream of text deltas. The `ChatRouter` (OpenAI,
//! Anthropic and the embedded local model, in the configured order, with consent gating, fallback and a
//! circuit breaker) implements it; [`ProviderSource`] wraps one [`ChatProvider`] (tests, demos, the
//! benchmark); [`ScriptedProvider`] is a provider that streams given deltas.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::providers::chat::{ChatProvider, ChatRequest, DeltaStream, ProviderError, ProviderName};

/// A reply that has started: who answers, with which model, and the text deltas to come.
pub struct OpenedReply {
    pub provider: ProviderName,
    pub model: String,
    pub deltas: DeltaStream,
}

impl fmt::Debug for OpenedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedReply").field("provider", &self.provider).field("model", &self.model).finish()
    }
}

/// Opens a reply for the conversation. `cloud_allowed` is the family's cloud-AI consent: without it, a
/// request must never leave the machine. `child_first_name` lets a cloud-bound request be scrubbed of
/// the child's name. An error means nothing was generated (the source has already tried its fallbacks).
#[async_trait::async_trait]
pub trait ReplySource: Send + Sync + fmt::Debug {
    async fn open(
        &self,
        request: ChatRequest,
        child_first_name: &str,
        cloud_allowed: bool,
    ) -> Result<OpenedReply, ProviderError>;
}

/// The provider router is the production reply source: configured order, consent gating, scrubbing of
/// the child's name and PII before cloud calls, fall-over and circuit breakers.
#[async_trait::async_trait]
impl ReplySource for crate::providers::chat::router::ChatRouter {
    async fn open(
        &self,
        request: ChatRequest,
        child_first_name: &str,
        cloud_allowed: bool,
    ) -> Result<OpenedReply, ProviderError> {
        let opened = self.open_stream(request, child_first_name, cloud_allowed).await?;
        Ok(OpenedReply { provider: opened.provider, model: opened.model, deltas: opened.stream })
    }
}

/// One provider as a reply source; a cloud provider is refused without cloud consent.
#[derive(Debug, Clone)]
pub struct ProviderSource(pub Arc<dyn ChatProvider>);

#[async_trait::async_trait]
impl ReplySource for ProviderSource {
    async fn open(
        &self,
        request: ChatRequest,
        _child_first_name: &str,
        cloud_allowed: bool,
    ) -> Result<OpenedReply, ProviderError> {
        if self.0.is_cloud() && !cloud_allowed {
            return Err(ProviderError::NotConfigured);
        }
        let deltas = self.0.stream(request).await?;
        Ok(OpenedReply { provider: self.0.name(), model: self.0.model(), deltas })
    }
}

/// One scripted step of a [`ScriptedProvider`]'s reply.
#[derive(Clone, Debug)]
pub enum Step {
    /// A text delta.
    Text(String),
    /// Wait this long before the next step.
    Pause(Duration),
    /// End the stream with this error.
    Fail(ProviderError),
}

/// A provider that answers every request with the same scripted deltas and records what it was asked.
/// For tests, demos and the benchmark (with no pauses it is "instant").
#[derive(Debug, Default)]
pub struct ScriptedProvider {
    script: Mutex<Vec<Step>>,
    /// When set, `stream` fails with this error before any delta.
    refuse: Mutex<Option<ProviderError>>,
    requests: Mutex<Vec<ChatRequest>>,
    name: Option<ProviderName>,
}

impl ScriptedProvider {
    pub fn new(script: Vec<Step>) -> Self {
        Self { script: Mutex::new(script), ..Self::default() }
    }

    /// Deltas with no pauses.
    pub fn instant<S: Into<String>>(deltas: impl IntoIterator<Item = S>) -> Self {
        Self::new(deltas.into_iter().map(|d| Step::Text(d.into())).collect())
    }

    /// Answers as if it were this provider (default: local).
    pub fn named(mut self, name: ProviderName) -> Self {
        self.name = Some(name);
        self
    }

    /// Replaces the script for the following requests.
    pub fn set_script(&self, script: Vec<Step>) {
        *self.script.lock().unwrap_or_else(|e| e.into_inner()) = script;
    }

    /// Makes the next requests fail before any delta (None: answer again).
    pub fn set_refusal(&self, error: Option<ProviderError>) {
        *self.refuse.lock().unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[async_trait::async_trait]
impl ChatProvider for ScriptedProvider {
    fn name(&self) -> ProviderName {
        self.name.unwrap_or(ProviderName::Local)
    }

    fn model(&self) -> String {
        "scripted".into()
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        if let Some(error) = self.refuse.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(error);
        }
        let script = self.script.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let stream = futures::stream::unfold(script.into_iter(), |mut steps| async move {
            loop {
                match steps.next()? {
                    Step::Text(text) => return Some((Ok(text), steps)),
                    Step::Pause(duration) => tokio::time::sleep(duration).await,
                    Step::Fail(error) => {
                        // Nothing follows an error.
                        return Some((Err(error), Vec::new().into_iter()));
                    }
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
