//! The signed-in parent's area under `/family`. Today it holds the overview (account and next steps);
//! the consent, children and PIN pages slot in beside it as `/family/consent`, `/family/children`
//! and `/family/pin`: add each to [`FAMILY_SECTIONS`] (the sub-navigation) and, when it is a step of
//! getting started, to [`steps`].

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{Layout, PageError, PageQuery, Viewer, render};
use crate::domain::Context;
use crate::domain::accounts::{Authenticated, Role};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/family", get(overview))
}

/// The family area's sub-navigation, in order: `(path, label)`.
pub const FAMILY_SECTIONS: &[(&str, &str)] = &[("/family", "Overview")];

/// One entry of the family sub-navigation, marked when it is the page being shown.
pub struct SectionLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

pub fn section_links(current: &str) -> Vec<SectionLink> {
    FAMILY_SECTIONS
        .iter()
        .map(|&(href, label)| SectionLink { href, label, current: href == current })
        .collect()
}

/// One step of getting a family started, shown as done or to do.
pub struct Step {
    pub title: &'static str,
    pub detail: String,
    pub done: bool,
}

/// The steps a parent takes before a child can chat, as far as they are built.
pub fn steps(auth: &Authenticated) -> Vec<Step> {
    let verified = auth.user.email_verified_at.is_some();
    vec![Step {
        title: "Confirm your email",
        detail: if verified {
            format!("{} is confirmed.", auth.user.email)
        } else {
            format!("We sent a link to {}. Open it to confirm the address.", auth.user.email)
        },
        done: verified,
    }]
}

/// The signed-in parent a family page is for. Signed out: to the sign-in page and back to `path`.
/// In kid mode or a staff account: a page that says why not.
pub fn require_parent<'a>(viewer: &'a Viewer, path: &str) -> Result<&'a Authenticated, PageError> {
    let Some(auth) = &viewer.0 else {
        return Err(PageError::sign_in_then(path));
    };
    if auth.session.kid_child_id.is_some() {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Kid mode is on in this browser, so the family pages are closed. A parent can leave kid mode with the family PIN.",
        ));
    }
    if auth.role != Role::Parent {
        return Err(PageError::new(StatusCode::FORBIDDEN, "The family pages are for parent accounts."));
    }
    Ok(auth)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    pub notice: String,
}

/// Notices the family pages show after a redirect, by name (never free text from the URL).
pub fn family_notice(name: &str) -> Option<&'static str> {
    match name {
        "verification-sent" => Some("We sent a new confirmation link. It works for 48 hours."),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "family/overview.html")]
struct OverviewPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    email: String,
    email_verified: bool,
    steps: Vec<Step>,
}

async fn overview(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, "/family")?;
    let page = OverviewPage {
        sections: section_links("/family"),
        notice: family_notice(&query.notice),
        email: auth.user.email.clone(),
        email_verified: auth.user.email_verified_at.is_some(),
        steps: steps(auth),
        layout: Layout::new(&ctx, &viewer, "family", "Your family"),
    };
    Ok(render(StatusCode::OK, &page))
}
