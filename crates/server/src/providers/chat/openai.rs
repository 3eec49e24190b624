//! OpenAI's Chat Completions API with `stream: true`, or any server that speaks it (Ollama, vLLM,
//! llama.cpp's server) through `OPENAI_BASE_URL`.
//!
//! Wire format: `POST {base}/chat/completions` with `Authorization: Bearer {key}` and
//! `{"model", "messages": [{"role", "content"}], "stream": true, "max_tokens", "temperature"}`; the answer
//! is Server-Sent Events whose data is a JSON chunk with `choices[0].delta.content`, ended by
//! `data: [DONE]`.

use std::time::Duration;

use serde_json::{Value, json};

use super::wire::{self, Interpreter, SseEvent, Step};
use super::{ChatProvider, ChatRequest, DeltaStream, ProviderError, ProviderName};
use crate::config::{Config, Secret};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Clone, Debug)]
pub struct OpenAiSettings {
    /// Up to and including the version, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// Sent as a bearer token; a self-hosted server may need none.
    pub api_key: Option<Secret>,
    pub model: String,
    pub connect_timeout: Duration,
}

impl OpenAiSettings {
    /// From `OPENAI_API_KEY`, `OPENAI_BASE_URL` and `ONDA_OPENAI_MODEL`; `None` when neither a key nor
    /// a base URL is set (a self-hosted compatible server may need no key).
    pub fn from_config(config: &Config, connect_timeout: Duration) -> Option<Self> {
        if config.openai_api_key.is_none() && config.openai_base_url.is_none() {
            return None;
        }
        Some(Self {
            base_url: config.openai_base_url.as_ref().map_or(DEFAULT_BASE_URL.to_string(), |u| u.to_string()),
            api_key: config.openai_api_key.clone(),
            model: config.openai_model.clone(),
            connect_timeout,
        })
    }
}

#[derive(Debug)]
pub struct OpenAiProvider {
    endpoint: String,
    api_key: Option<Secret>,
    model: String,
    client: reqwest::Client,
}

impl OpenAiProvider {
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        Ok(Self {
            endpoint: format!("{}/chat/completions", settings.base_url.trim_end_matches('/')),
            api_key: settings.api_key,
            model: settings.model,
            client: wire::client(settings.connect_timeout)?,
        })
    }

    /// The JSON body of a request (public for tests that compare wire formats).
    pub fn body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> =
            request.messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect();
        json!({
            "model": self.model,
            "messages": messages,
            "stream": true,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        })
    }
}

#[async_trait::async_trait]
impl ChatProvider for OpenAiProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Openai
    }

    fn model(&self) -> String {
        self.model.clone()
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let mut call = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&self.body(&request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key.expose());
        }
        let response = call.send().await.map_err(|e| wire::request_error(&e))?;
        if !response.status().is_success() {
            return Err(wire::status_error("openai", response).await);
        }
        wire::expect_event_stream(&response)?;
        Ok(wire::delta_stream(response, Chunks::default()))
    }
}

/// Reads `chat.completion.chunk` events.
#[derive(Debug, Default)]
struct Chunks {
    finished: bool,
}

impl Interpreter for Chunks {
    fn event(&mut self, event: SseEvent) -> Result<Step, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Step::Done);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|_| ProviderError::Protocol("an event is not valid JSON".into()))?;
        if chunk.get("error").is_some() {
            tracing::warn!(
                provider = "openai",
                error_type = wire::error_identifier(&chunk).as_deref().unwrap_or("unknown"),
                "chat provider reported an error mid-stream"
            );
            return Err(ProviderError::Protocol("the provider reported an error mid-stream".into()));
        }
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            return Err(ProviderError::Protocol("a chunk has no choices".into()));
        };
        // A last chunk may carry only usage, with no choice.
        let Some(choice) = choices.iter().find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        else {
            return Ok(Step::Skip);
        };
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.finished = true;
        }
        match choice.get("delta").and_then(|d| d.get("content")) {
            Some(Value::String(text)) => Ok(Step::Text(text.clone())),
            None | Some(Value::Null) => Ok(Step::Skip),
            Some(_) => Err(ProviderError::Protocol("a delta's content is not text".into())),
        }
    }

    fn may_end_here(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> SseEvent {
        SseEvent { event: None, data: json.into() }
    }

    #[test]
    fn chunks_give_text_skip_metadata_and_end_at_done() {
        let mut chunks = Chunks::default();
        let role_only =
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(chunks.event(data(role_only)), Ok(Step::Text(String::new())));
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(chunks.event(data(text)), Ok(Step::Text("Hi".into())));
        assert!(!chunks.may_end_here());
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(chunks.event(data(last)), Ok(Step::Skip));
        assert!(chunks.may_end_here());
        assert_eq!(chunks.event(data(r#"{"choices":[],"usage":{"total_tokens":3}}"#)), Ok(Step::Skip));
        assert_eq!(chunks.event(data("[DONE]")), Ok(Step::Done));
    }

    #[test]
    fn the_key_never_shows_in_debug_and_the_endpoint_joins_cleanly() {
        let provider = OpenAiProvider::new(OpenAiSettings {
            base_url: "http://localhost:11434/v1/".into(),
            api_key: Some(Secret::new("sk-very-secret")),
            model: "llama3.2".into(),
            connect_timeout: Duration::from_secs(1),
        })
        .expect("a client");
        assert!(!format!("{provider:?}").contains("sk-very-secret"));
        assert_eq!(provider.endpoint, "http://localhost:11434/v1/chat/completions");
    }

    #[test]
    fn malformed_chunks_and_errors_are_protocol_errors() {
        let mut chunks = Chunks::default();
        assert!(matches!(chunks.event(data("{nope")), Err(ProviderError::Protocol(_))));
        assert!(matches!(chunks.event(data(r#"{"id":"x"}"#)), Err(ProviderError::Protocol(_))));
        let error = r#"{"error":{"message":"secret details","type":"server_error"}}"#;
        let err = chunks.event(data(error)).expect_err("an error event");
        assert!(!err.to_string().contains("secret details"));
    }
}
