//! Prometheus metrics at `/metrics`.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

#[derive(Debug, Default)]
pub struct Metrics {}

pub fn routes() -> Router<AppState> {
    Router::new()
}

pub async fn middleware(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}
