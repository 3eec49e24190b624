//! The OpenAPI 3.1 description of the JSON API, served at `/api/openapi.json`. The document is
//! `crates/server/openapi.json`, compiled into the binary; the drift test in `tests/api/pages.rs`
//! sends a request for every path and method it lists, so a route missing from the router fails CI.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;

/// The document as served.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            // Small and changes with each release: revalidate rather than keep.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_for_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")));
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }
}
