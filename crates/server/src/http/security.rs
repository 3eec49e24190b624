//! Security headers and CSRF protection.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

pub async fn headers_middleware(State(_state): State<AppState>, request: Request, next: Next) -> Response {
    next.run(request).await
}

pub async fn csrf_middleware(request: Request, next: Next) -> Response {
    next.run(request).await
}
