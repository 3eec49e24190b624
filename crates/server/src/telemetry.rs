//! Structured logs. Request spans carry the method, the route and the request id, never a body:
//! a child's message text must never reach a log line.

use axum::http::Request;
use tracing::Span;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},sqlx=warn,tower_http=info,hyper=warn",
        level = config.log_level
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // The path only, never the query string: tokens travel in some links.
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
}
