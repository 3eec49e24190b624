//! Test support (no part of a running Onda uses it): fake chat providers for the tests of the
//! providers, the router and the conversation.
//!
//! - [`FakeChatServer`]: a small HTTP server on `127.0.0.1:0` that speaks OpenAI's or Anthropic's real
//!   streaming wire protocol, records every request it receives, and answers as told ([`FakeReply`]):
//!   a normal stream of deltas, an HTTP error, a hang, a malformed stream, a dropped connection, an empty
//!   reply. Point a provider at [`FakeChatServer::base_url`] (`OPENAI_BASE_URL` /
//!   `ONDA_ANTHROPIC_BASE_URL`).
//! - [`ScriptedProvider`]: the same answers from an in-process [`ChatProvider`], for tests and
//!   benchmarks that do not need the wire.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{AnthropicProvider, AnthropicSettings, OpenAiProvider, OpenAiSettings};
use super::{ChatProvider, ChatRequest, DeltaStream, ProviderError, ProviderName};
use crate::config::Secret;

pub const FAKE_OPENAI_KEY: &str = "sk-fake-openai-key";
pub const FAKE_ANTHROPIC_KEY: &str = "sk-ant-fake-key";
pub const FAKE_OPENAI_MODEL: &str = "fake-gpt";
pub const FAKE_ANTHROPIC_MODEL: &str = "fake-claude";

/// How a fake answers one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeReply {
    /// A complete, normal streamed reply made of these deltas.
    Deltas(Vec<String>),
    /// An error answer with this HTTP status and the provider's JSON error body.
    Status(u16),
    /// Never answers, not even the headers.
    Hang,
    /// Streams these deltas, then goes silent without ending.
    HangAfter(Vec<String>),
    /// A success whose first event is not valid JSON.
    Malformed,
    /// Streams these deltas, then cuts the connection.
    DropAfter(Vec<String>),
    /// A complete reply with no text.
    Empty,
}

impl FakeReply {
    pub fn text(deltas: &[&str]) -> Self {
        FakeReply::Deltas(deltas.iter().map(|d| d.to_string()).collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeProtocol {
    OpenAi,
    Anthropic,
}

/// How the fake lays out its bytes, to exercise the client's event parsing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStyle {
    /// Lines end in `\r\n` instead of `\n`.
    pub crlf: bool,
    /// Bytes are sent in pieces of this size (cutting events, lines and characters) instead of one
    /// piece per event.
    pub piece_bytes: Option<usize>,
    /// `: comment` lines between events.
    pub comments: bool,
}

/// One request a fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// Every text of the request (headers' values and the whole body), to assert that something
    /// never left the machine.
    pub fn all_text(&self) -> String {
        let headers: Vec<&str> = self.headers.iter().map(|(_, v)| v.as_str()).collect();
        format!("{} {}", headers.join(" "), self.body)
    }
}

#[derive(Debug)]
struct FakeState {
    protocol: FakeProtocol,
    queued: VecDeque<FakeReply>,
    default: FakeReply,
    style: WireStyle,
    requests: Vec<RecordedRequest>,
}

/// A fake OpenAI or Anthropic server on `127.0.0.1:0`; stops when dropped.
#[derive(Debug)]
pub struct FakeChatServer {
    address: std::net::SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeChatServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fake OpenAI server (an alias to read well in tests).
pub type FakeOpenAi = FakeChatServer;
/// A fake Anthropic server (an alias to read well in tests).
pub type FakeAnthropic = FakeChatServer;

impl FakeChatServer {
    /// Speaks Chat Completions at `{base_url}/chat/completions`.
    pub async fn openai() -> Self {
        Self::start(FakeProtocol::OpenAi).await
    }

    /// Speaks the Messages API at `{base_url}/v1/messages`.
    pub async fn anthropic() -> Self {
        Self::start(FakeProtocol::Anthropic).await
    }

    async fn start(protocol: FakeProtocol) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            protocol,
            queued: VecDeque::new(),
            default: FakeReply::text(&["Hello", " from the", " fake!"]),
            style: WireStyle::default(),
            requests: Vec::new(),
        }));
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a fake server binds a local port");
        let address = listener.local_addr().expect("a bound address");
        let app = axum::Router::new().fallback(answer).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, state, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The base URL a provider takes: `http://127.0.0.1:PORT/v1` for OpenAI (as `OPENAI_BASE_URL`),
    /// `http://127.0.0.1:PORT` for Anthropic (as `ONDA_ANTHROPIC_BASE_URL`).
    pub fn base_url(&self) -> String {
        match self.lock().protocol {
            FakeProtocol::OpenAi => format!("http://{}/v1", self.address),
            FakeProtocol::Anthropic => format!("http://{}", self.address),
        }
    }

    /// How every request is answered once the queued answers are used up.
    pub fn always(&self, reply: FakeReply) {
        self.lock().default = reply;
    }

    /// Answers the next request this way (queued answers go first, in order).
    pub fn then(&self, reply: FakeReply) {
        self.lock().queued.push_back(reply);
    }

    pub fn set_style(&self, style: WireStyle) {
        self.lock().style = style;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// A provider pointed at this fake, with the fake key and model.
    pub fn provider(&self, connect_timeout: Duration) -> Arc<dyn ChatProvider> {
        let protocol = self.lock().protocol;
        match protocol {
            FakeProtocol::OpenAi => Arc::new(
                OpenAiProvider::new(OpenAiSettings {
                    base_url: self.base_url(),
                    api_key: Some(Secret::new(FAKE_OPENAI_KEY)),
                    model: FAKE_OPENAI_MODEL.into(),
                    connect_timeout,
                })
                .expect("an HTTP client"),
            ),
            FakeProtocol::Anthropic => Arc::new(
                AnthropicProvider::new(AnthropicSettings {
                    base_url: self.base_url(),
                    api_key: Secret::new(FAKE_ANTHROPIC_KEY),
                    model: FAKE_ANTHROPIC_MODEL.into(),
                    connect_timeout,
                })
                .expect("an HTTP client"),
            ),
        }
    }

    /// The configuration variables that point Onda at this fake.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let protocol = self.lock().protocol;
        let pairs = match protocol {
            FakeProtocol::OpenAi => [
                ("OPENAI_BASE_URL", self.base_url()),
                ("OPENAI_API_KEY", FAKE_OPENAI_KEY.to_string()),
                ("ONDA_OPENAI_MODEL", FAKE_OPENAI_MODEL.to_string()),
            ],
            FakeProtocol::Anthropic => [
                ("ONDA_ANTHROPIC_BASE_URL", self.base_url()),
                ("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY.to_string()),
                ("ONDA_ANTHROPIC_MODEL", FAKE_ANTHROPIC_MODEL.to_string()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (protocol, reply, style) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let reply = s.queued.pop_front().unwrap_or_else(|| s.default.clone());
        (s.protocol, reply, s.style)
    };
    let expected_path = match protocol {
        FakeProtocol::OpenAi => "/v1/chat/completions",
        FakeProtocol::Anthropic => "/v1/messages",
    };
    if method != Method::POST || uri.path() != expected_path {
        return StatusCode::NOT_FOUND.into_response();
    }
    let events = |deltas: &[String], complete: bool| match protocol {
        FakeProtocol::OpenAi => openai_events(deltas, complete),
        FakeProtocol::Anthropic => anthropic_events(deltas, complete),
    };
    match reply {
        FakeReply::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = match protocol {
                FakeProtocol::OpenAi => json!({"error": {
                    "message": "The fake server had an error (a provider's text the child must never see)",
                    "type": "server_error", "param": null, "code": null}}),
                FakeProtocol::Anthropic => json!({"type": "error", "error": {
                    "type": "api_error",
                    "message": "The fake server had an error (a provider's text the child must never see)"}}),
            };
            (status, axum::Json(body)).into_response()
        }
        FakeReply::Hang => {
            futures::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        FakeReply::Deltas(deltas) => sse(pieces(&events(&deltas, true), style), Ending::Complete),
        FakeReply::Empty => sse(pieces(&events(&[], true), style), Ending::Complete),
        FakeReply::HangAfter(deltas) => sse(pieces(&events(&deltas, false), style), Ending::Hang),
        FakeReply::DropAfter(deltas) => sse(pieces(&events(&deltas, false), style), Ending::Drop),
        FakeReply::Malformed => {
            let mut events = vec![(None, "{\"choices\": [{\"delta\": {\"content\": \"Hi".to_string())];
            if protocol == FakeProtocol::Anthropic {
                events.insert(0, (Some("message_start"), message_start()));
            }
            sse(pieces(&events, style), Ending::Complete)
        }
    }
}

type Event = (Option<&'static str>, String);

fn openai_events(deltas: &[String], complete: bool) -> Vec<Event> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": FAKE_OPENAI_MODEL,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![(None, chunk(json!({"role": "assistant", "content": ""}), Value::Null))];
    events.extend(deltas.iter().map(|d| (None, chunk(json!({"content": d}), Value::Null))));
    if complete {
        events.push((None, chunk(json!({}), json!("stop"))));
        events.push((None, "[DONE]".to_string()));
    }
    events
}

fn message_start() -> String {
    json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
        "content": [], "model": FAKE_ANTHROPIC_MODEL, "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1}}})
    .to_string()
}

fn anthropic_events(deltas: &[String], complete: bool) -> Vec<Event> {
    let mut events = vec![
        (Some("message_start"), message_start()),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                .to_string(),
        ),
        (Some("ping"), json!({"type": "ping"}).to_string()),
    ];
    events.extend(deltas.iter().map(|d| {
        (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}})
                .to_string(),
        )
    }));
    if complete {
        events.push((
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}).to_string(),
        ));
        events.push((
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 15}})
            .to_string(),
        ));
        events.push((Some("message_stop"), json!({"type": "message_stop"}).to_string()));
    }
    events
}

/// The events as bytes, cut into pieces as the style says.
fn pieces(events: &[Event], style: WireStyle) -> Vec<Bytes> {
    let nl = if style.crlf { "\r\n" } else { "\n" };
    let per_event: Vec<String> = events
        .iter()
        .map(|(name, data)| {
            let mut text = String::new();
            if style.comments {
                text.push_str(&format!(": keep-alive{nl}"));
            }
            if let Some(name) = name {
                text.push_str(&format!("event: {name}{nl}"));
            }
            text.push_str(&format!("data: {data}{nl}{nl}"));
            text
        })
        .collect();
    match style.piece_bytes {
        None => per_event.into_iter().map(Bytes::from).collect(),
        Some(size) => {
            let all = per_event.concat().into_bytes();
            all.chunks(size.max(1)).map(Bytes::copy_from_slice).collect()
        }
    }
}

enum Ending {
    Complete,
    Hang,
    Drop,
}

fn sse(pieces: Vec<Bytes>, ending: Ending) -> Response {
    let body = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
    let body = match ending {
        Ending::Complete => body.boxed(),
        Ending::Hang => body.chain(futures::stream::pending()).boxed(),
        Ending::Drop => body
            .chain(futures::stream::once(async {
                // A pending body makes the server flush what it has written; then the cut.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                Err(std::io::Error::other("the fake cuts the connection"))
            }))
            .boxed(),
    };
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An in-process provider answering from a script, recording what it was asked.
#[derive(Debug)]
pub struct ScriptedProvider {
    name: ProviderName,
    model: String,
    state: Mutex<(VecDeque<FakeReply>, FakeReply, Vec<ChatRequest>)>,
}

impl ScriptedProvider {
    /// A provider with this name (cloud unless it is `Local`), answering `default` once the queued
    /// answers are used up.
    pub fn new(name: ProviderName, default: FakeReply) -> Arc<Self> {
        Arc::new(Self {
            name,
            model: format!("scripted-{name:?}").to_lowercase(),
            state: Mutex::new((VecDeque::new(), default, Vec::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<FakeReply>, FakeReply, Vec<ChatRequest>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next request this way.
    pub fn then(&self, reply: FakeReply) {
        self.lock().0.push_back(reply);
    }

    pub fn always(&self, reply: FakeReply) {
        self.lock().1 = reply;
    }

    pub fn requests(&self) -> Vec<ChatRequest> {
        self.lock().2.clone()
    }
}

#[async_trait::async_trait]
impl ChatProvider for ScriptedProvider {
    fn name(&self) -> ProviderName {
        self.name
    }

    fn model(&self) -> String {
        self.model.clone()
    }

    async fn stream(&self, request: ChatRequest) -> Result<DeltaStream, ProviderError> {
        let reply = {
            let mut state = self.lock();
            state.2.push(request);
            let default = state.1.clone();
            state.0.pop_front().unwrap_or(default)
        };
        let ok = |deltas: Vec<String>| futures::stream::iter(deltas.into_iter().map(Ok));
        Ok(match reply {
            FakeReply::Deltas(deltas) => ok(deltas).boxed(),
            FakeReply::Status(code) => return Err(ProviderError::Status(code)),
            FakeReply::Hang => {
                futures::future::pending::<Infallible>().await;
                return Err(ProviderError::Dropped);
            }
            FakeReply::HangAfter(deltas) => ok(deltas).chain(futures::stream::pending()).boxed(),
            FakeReply::Malformed => {
                futures::stream::iter([Err(ProviderError::Protocol("malformed (scripted)".into()))]).boxed()
            }
            FakeReply::DropAfter(deltas) => {
                ok(deltas).chain(futures::stream::iter([Err(ProviderError::Dropped)])).boxed()
            }
            FakeReply::Empty => futures::stream::empty().boxed(),
        })
    }
}
