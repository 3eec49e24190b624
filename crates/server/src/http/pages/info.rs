//! Pages anyone may read: what Onda is, the privacy policy and the terms in force.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{Layout, Viewer, render};
use crate::domain::Context;
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home)).route("/privacy", get(privacy)).route("/terms", get(terms))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    signed_in_parent: bool,
}

async fn home(State(ctx): State<Context>, viewer: Viewer) -> Response {
    let page = HomePage {
        signed_in_parent: viewer.parent().is_some(),
        layout: Layout::new(&ctx, &viewer, "home", "A safe AI buddy for children"),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyPage {
    layout: Layout,
    version: String,
    retention_days: u32,
}

async fn privacy(State(ctx): State<Context>, viewer: Viewer) -> Response {
    let page = PrivacyPage {
        version: ctx.config.privacy_policy_version.clone(),
        retention_days: ctx.config.default_data_retention_days,
        layout: Layout::new(&ctx, &viewer, "privacy", "Privacy policy"),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "terms.html")]
struct TermsPage {
    layout: Layout,
    version: String,
}

async fn terms(State(ctx): State<Context>, viewer: Viewer) -> Response {
    let page = TermsPage {
        version: ctx.config.terms_of_service_version.clone(),
        layout: Layout::new(&ctx, &viewer, "terms", "Terms of use"),
    };
    render(StatusCode::OK, &page)
}
