//! Anthropic's Messages API with streaming events.
//!
//! Wire format: `POST {base}/v1/messages` with `x-api-key`, `anthropic-version: 2023-06-01` and
//! `{"model", "max_tokens", "system", "messages": [{"role", "content"}], "stream": true, "temperature"}`:
//! the system prompt is a separate field, and the messages alternate user and assistant, starting with
//! the user. The answer is Server-Sent Events: `message_start`, `content_block_start`,
//! `content_block_delta` (text in `delta.text` when `delta.type` is `text_delta`), `content_block_stop`,
//! `message_delta`, `message_stop`, with `ping` and `error` at any time.

use std::time::Duration;

use serde_json::{Value, json};

use super::wire::{self, Interpreter, SseEvent, Step};
use super::{ChatProvider, ChatRequest, ChatRole, DeltaStream, ProviderError, ProviderName};
use crate::config::{Config, Secret};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
/// Stands in for the child's turn when a conversation would otherwise start with the assistant (the
/// API requires the user to speak first).
const OPENING_TURN: &str = "(The child opens the chat.)";

#[derive(Clone, Debug)]
pub struct AnthropicSettings {
    /// Without the version path, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub connect_timeout: Duration,
}

impl AnthropicSettings {
    /// From `ANTHROPIC_API_KEY`, `ONDA_ANTHROPIC_BASE_URL` and `ONDA_ANTHROPIC_MODEL`; `None` without a key.
    pub fn from_config(config: &Config, connect_timeout: Duration) -> Option<Self> {
        Some(Self {
            base_url: config
                .anthropic_base_url
                .as_ref()
                .map_or(DEFAULT_BASE_URL.to_string(), |u| u.to_string()),
            api_key: config.anthropic_api_key.clone()?,
            model: config.anthropic_model.clone(),
            connect_timeout,
        })
    }
}

#[derive(Debug)]
pub struct AnthropicProvider {
    endpoint: String,
    api_key: Secret,
    model: String,
    client: reqwest::Client,
}

impl AnthropicProvider {
    pub fn new(settings: AnthropicSettings) -> Result<Self, ProviderError> {
        Ok(Self {
            endpoint: format!("{}/v1/messages", settings.base_url.trim_end_matches('/')),
            api_key: settings.api_key,
            model: settings.model,
            client: wire::client(settings.connect_timeout)?,
        })
    }

    /// The JSON body of a request: system messages joined into `system`; the others merged so that
    /// roles alternate, starting with the user; empty messages dropped (the API refuses them).
    pub fn body(&self, request: &ChatRequest) -> Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == ChatRole::System && !m.content.trim().is_empty())
            .map(|m| m.content.as_str())
            .collect();
        let mut turns: Vec<(ChatRole, String)> = Vec::new();
        for m in request.messages.iter().filter(|m| m.role != ChatRole::System) {
            if m.content.trim().is_empty() {
                continue;
            }
            match turns.last_mut() {
                Some((role, text)) if *role == m.role => {
                    text.push_str("\n\n");
                    text.push_str(&m.content);
                }
                _ => turns.push((m.role, m.content.clone())),
            }
        }
        if turns.first().is_none_or(|(role, _)| *role != ChatRole::User) {
            turns.insert(0, (ChatRole::User, OPENING_TURN.to_string()));
        }
        let messages: Vec<Value> =
            turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": messages,
            "stream": true,
            "temperature": request.temperature.clamp(0.0, 1.0),
        });
        if !system.is_empty() {
            body["system"] = Value::String(system.join("\n\n"));
        }
        body
    }
}

#[async_trait::async_trait]
impl ChatProvider for AnthropicProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Anthropic
    }

    fn model(&self) -> String {
        self.model.clone()
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let response = self
            .client
            .post(&self.endpoint)
            .header("x-api-key", self.api_key.expose())
            .header("anthropic-version", API_VERSION)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&self.body(&request))
            .send()
            .await
            .map_err(|e| wire::request_error(&e))?;
        if !response.status().is_success() {
            return Err(wire::status_error("anthropic", response).await);
        }
        wire::expect_event_stream(&response)?;
        Ok(wire::delta_stream(response, Events))
    }
}

/// Reads the Messages streaming events by their `type` (the `event:` name says the same).
#[derive(Debug)]
struct Events;

impl Interpreter for Events {
    fn event(&mut self, event: SseEvent) -> Result<Step, ProviderError> {
        let value: Value = serde_json::from_str(&event.data)
            .map_err(|_| ProviderError::Protocol("an event is not valid JSON".into()))?;
        let kind = value.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or("");
        match kind {
            "content_block_delta" => {
                let delta = value.get("delta");
                if delta.and_then(|d| d.get("type")).and_then(Value::as_str) != Some("text_delta") {
                    // Tool input or thinking: nothing for the child.
                    return Ok(Step::Skip);
                }
                match delta.and_then(|d| d.get("text")) {
                    Some(Value::String(text)) => Ok(Step::Text(text.clone())),
                    _ => Err(ProviderError::Protocol("a text delta has no text".into())),
                }
            }
            "content_block_start" => {
                let block = value.get("content_block");
                match block.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("text") => Ok(Step::Text(
                        block.and_then(|b| b.get("text")).and_then(Value::as_str).unwrap_or("").to_string(),
                    )),
                    _ => Ok(Step::Skip),
                }
            }
            "message_stop" => Ok(Step::Done),
            "error" => {
                let error_type = wire::error_identifier(&value);
                tracing::warn!(
                    provider = "anthropic",
                    error_type = error_type.as_deref().unwrap_or("unknown"),
                    "chat provider reported an error mid-stream"
                );
                Err(match error_type.as_deref() {
                    Some("overloaded_error") => ProviderError::Status(529),
                    Some("rate_limit_error") => ProviderError::Status(429),
                    Some("api_error") => ProviderError::Status(500),
                    _ => ProviderError::Protocol("the provider reported an error mid-stream".into()),
                })
            }
            // message_start, content_block_stop, message_delta, ping, and event types added later.
            _ => Ok(Step::Skip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::chat::ChatMessage;

    fn provider() -> AnthropicProvider {
        AnthropicProvider::new(AnthropicSettings {
            base_url: "http://127.0.0.1:9".into(),
            api_key: Secret::new("k"),
            model: "m".into(),
            connect_timeout: Duration::from_secs(1),
        })
        .expect("a client")
    }

    #[test]
    fn system_goes_apart_and_roles_alternate_from_the_user() {
        let request = ChatRequest {
            messages: vec![
                ChatMessage::new(ChatRole::System, "Be kind."),
                ChatMessage::new(ChatRole::Assistant, "Hi! I am an AI buddy."),
                ChatMessage::new(ChatRole::User, "hello"),
                ChatMessage::new(ChatRole::User, "are you there"),
                ChatMessage::new(ChatRole::Assistant, ""),
            ],
            max_tokens: 100,
            temperature: 1.5,
        };
        let body = provider().body(&request);
        assert_eq!(body["system"], "Be kind.");
        assert_eq!(body["temperature"], 1.0);
        let messages = body["messages"].as_array().expect("messages");
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().expect("role")).collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(messages[0]["content"], OPENING_TURN);
        assert_eq!(messages[2]["content"], "hello\n\nare you there");
    }

    #[test]
    fn events_give_text_and_end_at_message_stop() {
        let mut events = Events;
        let ev = |data: &str| SseEvent { event: None, data: data.into() };
        assert_eq!(events.event(ev(r#"{"type":"ping"}"#)), Ok(Step::Skip));
        let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
        assert_eq!(events.event(ev(delta)), Ok(Step::Text("Hi".into())));
        let json_delta = r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{"}}"#;
        assert_eq!(events.event(ev(json_delta)), Ok(Step::Skip));
        assert_eq!(events.event(ev(r#"{"type":"message_stop"}"#)), Ok(Step::Done));
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(events.event(ev(overloaded)), Err(ProviderError::Status(529)));
        assert!(matches!(events.event(ev("not json")), Err(ProviderError::Protocol(_))));
    }
}
