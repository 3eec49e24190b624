//! Kid mode in the browser: `/kid`, the child's page while a parent's session is in kid mode (a warm
//! placeholder until the chat arrives), and `/kid/leave`, where a grown-up enters the family PIN to
//! get the browser back (`domain::pin::leave_kid_mode`, as `POST /api/pin/verify`). The family pages
//! send a browser in kid mode to `/kid/leave?next=...`.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::family::children::{persona_description, persona_label};
use super::{FormErrors, Layout, PageError, PageForm, PageQuery, Viewer, local_path, render, see_other};
use crate::domain::accounts::Role;
use crate::domain::children::{self, Persona};
use crate::domain::{Context, DomainError, consent, pin};
use crate::http::AppState;
use crate::http::extract::ClientIp;

pub fn routes() -> Router<AppState> {
    Router::new().route("/kid", get(kid_home)).route("/kid/leave", get(leave_form).post(leave))
}

/// Where a grown-up lands after leaving kid mode when no page asked to come back.
const AFTER_LEAVING: &str = "/family?notice=kid-mode-left";

#[derive(Template)]
#[template(path = "kid/home.html")]
struct KidHomePage {
    layout: Layout,
    /// `None` when no child's session is open in this browser.
    name: Option<String>,
    /// "raccoon", for "your raccoon buddy".
    buddy: String,
    buddy_description: &'static str,
    /// Consent is no longer in force: the buddy rests until a parent sorts it out.
    resting: bool,
}

async fn kid_home(State(ctx): State<Context>, viewer: Viewer) -> Result<Response, PageError> {
    let Some(auth) = &viewer.0 else {
        let page = KidHomePage {
            layout: Layout::new(&ctx, &viewer, "kid", "Hello"),
            name: None,
            buddy: String::new(),
            buddy_description: "",
            resting: false,
        };
        return Ok(render(StatusCode::UNAUTHORIZED, &page));
    };
    let (Some(child_id), Some(family_id)) = (&auth.session.kid_child_id, &auth.user.family_id) else {
        if auth.role == Role::Parent {
            // A parent outside kid mode starts a child's session from the children page.
            return Ok(see_other("/family/children", None));
        }
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This page is for children, once a parent starts their session.",
        ));
    };
    let child = children::get(&ctx, family_id, child_id).await?;
    let resting = !consent::chat_allowed(&ctx, family_id).await?;
    let persona = Persona::parse(&child.persona);
    let page = KidHomePage {
        layout: Layout::new(&ctx, &viewer, "kid", format!("Hi {}", child.display_name)),
        name: Some(child.display_name),
        buddy: persona.map_or("", persona_label).to_lowercase(),
        buddy_description: persona.map_or("", persona_description),
        resting,
    };
    let status = if resting { StatusCode::FORBIDDEN } else { StatusCode::OK };
    Ok(render(status, &page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LeaveQuery {
    pub next: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LeaveForm {
    pub pin: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "kid/leave.html")]
struct LeavePage {
    layout: Layout,
    next: String,
    errors: FormErrors,
    locked: bool,
}

fn leave_page(ctx: &Context, viewer: &Viewer, next: String, errors: FormErrors, locked: bool) -> LeavePage {
    LeavePage { layout: Layout::new(ctx, viewer, "kid", "Grown-ups only"), next, errors, locked }
}

/// Where to go after the PIN: the page that sent the browser here, or the family page.
fn destination(next: &str) -> &str {
    local_path(next).unwrap_or(AFTER_LEAVING)
}

async fn leave_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<LeaveQuery>,
) -> Result<Response, PageError> {
    let next = local_path(&query.next).unwrap_or_default().to_string();
    let Some(auth) = &viewer.0 else {
        return Err(PageError::sign_in_then(if next.is_empty() { "/family" } else { &next }));
    };
    if auth.session.kid_child_id.is_none() {
        return Ok(see_other(if next.is_empty() { "/family" } else { &next }, None));
    }
    Ok(render(StatusCode::OK, &leave_page(&ctx, &viewer, next, FormErrors::default(), false)))
}

/// Checks the PIN and gives the browser back to the parent. A wrong PIN says how many tries are left;
/// a locked one says when to try again.
async fn leave(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<LeaveForm>,
) -> Result<Response, PageError> {
    let next = local_path(&form.next).unwrap_or_default().to_string();
    let Some(auth) = &viewer.0 else {
        return Err(PageError::sign_in_then(if next.is_empty() { "/family" } else { &next }));
    };
    let (status, message, retry_after) = match pin::leave_kid_mode(&ctx, auth, &form.pin, ip.as_deref()).await
    {
        Ok(()) => return Ok(see_other(destination(&next), None)),
        Err(DomainError::Invalid { message, .. }) => (StatusCode::UNPROCESSABLE_ENTITY, message, None),
        Err(DomainError::Forbidden(why)) => (StatusCode::FORBIDDEN, why.to_string(), None),
        Err(DomainError::Conflict(message)) => (StatusCode::CONFLICT, message, None),
        Err(DomainError::Locked { retry_after_seconds }) => (
            StatusCode::LOCKED,
            format!(
                "Too many wrong tries, so the PIN is locked. Try again in {} minutes",
                retry_after_seconds.div_ceil(60)
            ),
            Some(retry_after_seconds),
        ),
        Err(err) => return Err(err.into()),
    };
    let locked = retry_after.is_some();
    let page = leave_page(&ctx, &viewer, next, FormErrors::one("pin", message), locked);
    let mut response = render(status, &page);
    if let Some(value) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_goes_back_only_to_local_pages() {
        assert_eq!(destination("/family/children"), "/family/children");
        assert_eq!(destination(""), AFTER_LEAVING);
        assert_eq!(destination("https://evil.example"), AFTER_LEAVING);
    }
}
