//! What the HTTP providers share: the client, Server-Sent Events decoding, and the loop that turns a
//! response body into text deltas.
//!
//! Error texts built here never carry a byte of the provider's answer or of the request: they are
//! logged, and a child must never see them.

use std::collections::VecDeque;
use std::time::Duration;

use futures::StreamExt;

use super::{DeltaStream, ProviderError};

/// The longest line or event accepted from a provider; beyond it the stream is malformed.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// How much of an error body is read (to log its error type); the rest is dropped.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// One HTTP client per provider: connection pooling, a connect timeout, no redirects (a provider that
/// redirects a POST is misconfigured) and rustls with ring (no C toolchain beyond `cc`).
pub(crate) fn client(connect_timeout: Duration) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("onda/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| ProviderError::Other("the HTTP client could not be built".into()))
}

/// A failed request, without the URL or any text of the request.
pub(crate) fn request_error(err: &reqwest::Error) -> ProviderError {
    if err.is_timeout() {
        ProviderError::Timeout("a connection")
    } else if err.is_connect() {
        ProviderError::Connect("the provider could not be reached".into())
    } else if err.is_body() || err.is_decode() {
        ProviderError::Dropped
    } else {
        ProviderError::Connect("the request failed".into())
    }
}

/// Maps a non-success answer to [`ProviderError::Status`]. The body is read (bounded) only to log the
/// provider's error type (such as `invalid_api_key` or `overloaded_error`); its message is never kept.
pub(crate) async fn status_error(provider: &'static str, response: reqwest::Response) -> ProviderError {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY_BYTES {
            break;
        }
    }
    // Only a short identifier is logged, never the message.
    let error_type =
        serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| error_identifier(&v));
    tracing::warn!(
        provider,
        status,
        error_type = error_type.as_deref().unwrap_or("unknown"),
        "chat provider refused the request"
    );
    ProviderError::Status(status)
}

/// One Server-Sent Event: its `event` name (if any) and its data lines joined by `\n`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// An incremental decoder of `text/event-stream` (the WHATWG rules): lines end in `\n`, `\r\n` or `\r`
/// (also when split across chunks), `:` starts a comment, one space after the colon is dropped,
/// `data` lines accumulate, a blank line dispatches. Bytes are buffered until a line is complete, so a
/// UTF-8 character split across chunks is fine.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    ready: VecDeque<SseEvent>,
}

impl SseDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line()?,
                b'\r' => {
                    self.after_cr = true;
                    self.end_line()?;
                }
                _ => {
                    if self.line.len() >= MAX_EVENT_BYTES {
                        return Err(ProviderError::Protocol("an event line is too long".into()));
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// The body ended: a last line without its newline still counts, and an event without its blank
    /// line is dispatched (some compatible servers end that way).
    pub fn finish(&mut self) -> Result<(), ProviderError> {
        if !self.line.is_empty() {
            self.end_line()?;
        }
        self.dispatch();
        Ok(())
    }

    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn end_line(&mut self) -> Result<(), ProviderError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        let line =
            String::from_utf8(line).map_err(|_| ProviderError::Protocol("an event is not UTF-8".into()))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > MAX_EVENT_BYTES {
                    return Err(ProviderError::Protocol("an event is too long".into()));
                }
            }
            "event" => self.event = Some(value.to_string()),
            // `id` and `retry` matter to browsers reconnecting, not to a single reply.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            self.ready.push_back(SseEvent { event, data: std::mem::take(&mut self.data) });
        }
    }
}

/// What one event means to a provider's reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Text to show (empty text is skipped).
    Text(String),
    /// Nothing for the child (metadata, pings).
    Skip,
    /// The reply is complete; the rest of the body is not read.
    Done,
}

/// What a provider's events mean. One interpreter lives for one reply.
pub(crate) trait Interpreter: Send + 'static {
    fn event(&mut self, event: SseEvent) -> Result<Step, ProviderError>;
    /// Whether the body may end here without the provider's end marker (a compatible server that had
    /// already said the reply was finished, then closed without its `[DONE]`).
    fn may_end_here(&self) -> bool {
        false
    }
}

/// Checks a success answer is an event stream (a proxy that ignored `stream: true` answers JSON).
pub(crate) fn expect_event_stream(response: &reqwest::Response) -> Result<(), ProviderError> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        return Err(ProviderError::Protocol("the answer is JSON, not an event stream".into()));
    }
    Ok(())
}

/// Turns an SSE response body into text deltas, the interpreter deciding what each event means. The
/// body ending before the interpreter said [`Step::Done`] is a dropped connection.
pub(crate) fn delta_stream(response: reqwest::Response, interpreter: impl Interpreter) -> DeltaStream {
    struct State<I> {
        body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
        decoder: SseDecoder,
        interpreter: I,
        body_ended: bool,
        finished: bool,
    }
    let state = State {
        body: response.bytes_stream().boxed(),
        decoder: SseDecoder::default(),
        interpreter,
        body_ended: false,
        finished: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        loop {
            while let Some(event) = s.decoder.next_event() {
                match s.interpreter.event(event) {
                    Ok(Step::Text(text)) if !text.is_empty() => return Some((Ok(text), s)),
                    Ok(Step::Text(_) | Step::Skip) => {}
                    Ok(Step::Done) => return None,
                    Err(err) => {
                        s.finished = true;
                        return Some((Err(err), s));
                    }
                }
            }
            if s.body_ended {
                if s.interpreter.may_end_here() {
                    return None;
                }
                s.finished = true;
                return Some((Err(ProviderError::Dropped), s));
            }
            let fed = match s.body.next().await {
                Some(Ok(bytes)) => s.decoder.feed(&bytes),
                Some(Err(err)) => Err(if err.is_timeout() {
                    ProviderError::Timeout("the reply")
                } else {
                    ProviderError::Dropped
                }),
                None => {
                    s.body_ended = true;
                    s.decoder.finish()
                }
            };
            if let Err(err) = fed {
                s.finished = true;
                return Some((Err(err), s));
            }
        }
    })
    .boxed()
}

/// A short identifier from a provider's error object (`error.type` or `error.code`), safe to log.
pub(crate) fn error_identifier(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error")?;
    let kind = error.get("type").or_else(|| error.get("code"))?.as_str()?;
    let is_identifier =
        kind.len() <= 64 && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    is_identifier.then(|| kind.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &str, piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        for chunk in input.as_bytes().chunks(piece) {
            decoder.feed(chunk).expect("valid stream");
        }
        decoder.finish().expect("valid stream");
        std::iter::from_fn(|| decoder.next_event()).collect()
    }

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: name.map(str::to_string), data: data.to_string() }
    }

    #[test]
    fn events_survive_any_chunking_and_line_ending() {
        let lf = ": a comment\nevent: greet\ndata: h\u{e9}llo\n\ndata: {\"a\":1}\n\n";
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        let expected = vec![event(Some("greet"), "h\u{e9}llo"), event(None, "{\"a\":1}")];
        for input in [lf.to_string(), crlf, cr] {
            for piece in 1..=input.len() {
                assert_eq!(decode_in_pieces(&input, piece), expected, "pieces of {piece} bytes");
            }
        }
    }

    #[test]
    fn data_lines_join_and_the_leading_space_is_optional() {
        let events = decode_in_pieces("data:first\ndata:  second\n\n", 3);
        assert_eq!(events, vec![event(None, "first\n second")]);
    }

    #[test]
    fn blank_events_and_comments_dispatch_nothing() {
        assert!(decode_in_pieces(":ping\n\n\n\nevent: x\n\n", 2).is_empty());
    }

    #[test]
    fn a_last_event_without_its_blank_line_still_counts() {
        assert_eq!(decode_in_pieces("data: [DONE]", 4), vec![event(None, "[DONE]")]);
    }

    #[test]
    fn invalid_utf8_and_endless_lines_are_malformed() {
        let mut decoder = SseDecoder::default();
        assert!(matches!(decoder.feed(b"data: \xff\xfe\n"), Err(ProviderError::Protocol(_))));
        let mut decoder = SseDecoder::default();
        let long = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(matches!(decoder.feed(&long), Err(ProviderError::Protocol(_))));
    }
}
