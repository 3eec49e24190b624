//! The HTTP surface: JSON under `/api`, server-rendered pages, health and metrics. Handlers stay thin:
//! they extract, call `domain`, and shape the answer.

pub mod auth;
pub mod chat;
pub mod error;
pub mod extract;
pub mod family;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod ratelimit;
pub mod security;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::domain::Context;

/// Largest request body accepted anywhere (JSON and forms); bigger ones get 413 problem JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub ctx: Context,
    pub rate_limiter: Arc<ratelimit::RateLimiter>,
    pub metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(ctx: Context) -> Self {
        let rate_limiter = Arc::new(ratelimit::RateLimiter::new(ctx.config.rate_limit_enabled));
        Self { ctx, rate_limiter, metrics: Arc::new(metrics::Metrics::default()) }
    }
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::routes())
        .merge(chat::routes())
        .merge(family::routes())
        .merge(health::routes())
        .merge(openapi::routes());
    Router::new()
        .nest("/api", api)
        .merge(pages::routes())
        .merge(metrics::routes())
        .fallback(pages::fallback)
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::middleware))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::csrf_middleware))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::headers_middleware))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::middleware))
        .layer(axum::middleware::from_fn(error::problem_middleware))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(crate::telemetry::on_response),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
