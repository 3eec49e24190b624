//! `GET /api/health` and `/api/health/{database,safety,ai,voice,email}`: 200 when healthy or degraded,
//! 503 when a critical part (the database) fails. Exempt from rate limits; never a secret or an
//! internal error text in the answer.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::{ApiError, not_found};
use crate::domain::Context;
use crate::domain::health::{Part, Report, Status, Subsystems};

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(all)).route("/health/{part}", get(one))
}

async fn all(State(ctx): State<Context>) -> Response {
    let report = Subsystems::of(&ctx).report(&Part::ALL, ctx.now()).await;
    answer(report)
}

async fn one(State(ctx): State<Context>, Path(part): Path<String>) -> Result<Response, ApiError> {
    let Some(part) = Part::parse(&part) else { return Err(not_found().await) };
    let report = Subsystems::of(&ctx).report(&[part], ctx.now()).await;
    Ok(answer(report))
}

fn answer(report: Report) -> Response {
    let status = match report.status {
        Status::Healthy | Status::Degraded => StatusCode::OK,
        Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(report)).into_response()
}
