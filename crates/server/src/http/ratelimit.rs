//! Request limits per IP and per account.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

pub async fn middleware(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}
