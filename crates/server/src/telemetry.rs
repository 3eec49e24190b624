//! Structured logs (`LOG_LEVEL`; JSON lines with `ONDA_LOG_FORMAT=json`). Request spans carry the
//! method, the path, the status, the latency and the request id, never a body or a query string: a
//! child's message text, and the tokens some links carry, must never reach a log line.

use std::time::Duration;

use axum::http::{Request, Response};
use tracing::{Level, Span, field};

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    init_with_writer(config, std::io::stderr);
}

/// The same logs written elsewhere: the chat benchmark formats every line as a server does, into
/// `std::io::sink`, so that logging counts in the latency it measures without flooding its output.
pub fn init_with_writer<W>(config: &Config, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},sqlx=warn,tower_http=info,hyper=warn",
        level = config.log_level
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Probes and scrapers call often; their requests are logged at debug level only.
fn is_routine(path: &str) -> bool {
    path == "/api/health" || path.starts_with("/api/health/") || path == "/metrics"
}

pub fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The path only, never the query string: tokens travel in some links.
    let path = request.uri().path();
    if is_routine(path) {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            path,
            request_id,
            status = field::Empty,
            latency_ms = field::Empty
        )
    } else {
        tracing::info_span!(
            "request",
            method = %request.method(),
            path,
            request_id,
            status = field::Empty,
            latency_ms = field::Empty
        )
    }
}

/// Records the status and latency on the request span and logs one line per answered request.
pub fn on_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    // The status and latency are on the span, so they show on this line once.
    if span.metadata().is_some_and(|m| *m.level() == Level::INFO) {
        tracing::info!("request answered");
    } else {
        tracing::debug!("request answered");
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn request_lines_carry_the_route_but_never_the_query_or_body() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let request = Request::builder()
                .method("POST")
                .uri("/api/auth/password-reset/confirm?token=secret-token-123")
                .header("x-request-id", "req-42")
                .body("{\"message\":\"my secret is under the bed\"}")
                .expect("request");
            let span = request_span(&request);
            let _entered = span.enter();
            let response = Response::builder().status(204).body(()).expect("response");
            on_response(&response, Duration::from_millis(12), &span);
        });
        let text = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("utf-8");
        let line: serde_json::Value =
            serde_json::from_str(text.lines().next().expect("one line")).expect("a JSON log line");
        assert_eq!(line["span"]["path"], "/api/auth/password-reset/confirm");
        assert_eq!(line["span"]["method"], "POST");
        assert_eq!(line["span"]["request_id"], "req-42");
        assert_eq!(line["span"]["status"], 204);
        assert_eq!(line["span"]["latency_ms"], 12.0);
        assert!(!text.contains("secret-token-123"), "{text}");
        assert!(!text.contains("under the bed"), "{text}");
    }
}
