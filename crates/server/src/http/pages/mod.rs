//! Server-rendered pages for parents: plain HTML forms that work without JavaScript, rendered with
//! askama templates compiled into the binary (`crates/server/templates/`), styled by one embedded
//! stylesheet (`crates/server/assets/`).
//!
//! The pages call the same domain functions as the JSON API and use the same session cookie. Forms
//! follow Post/Redirect/Get: a good submission answers `303 See Other`; a refused one re-renders the
//! form with the refusal's status (401 wrong login, 409 conflict, 422 invalid input), its messages and
//! the values entered, never a password. Failures outside a form are friendly HTML pages, not problem
//! JSON. Nothing on a page is inline script or style, so the strict Content-Security-Policy holds.
//!
//! Areas: [`info`] (home, privacy, terms), [`account`] (sign-up, sign-in, sign-out, email
//! verification, password reset), [`family`] (the signed-in parent's area under `/family`: overview,
//! consent, children, PIN; and the consent revoke link `/consent/revoke`), [`kid`] (the child's page
//! in kid mode and the PIN to leave it) and [`assets`].

pub mod account;
pub mod assets;
pub mod family;
pub mod info;
pub mod kid;

use askama::Template;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::extract::SignedIn;
use crate::domain::DomainError;
use crate::domain::accounts::{Authenticated, Role};
use crate::storage::StorageError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(info::routes())
        .merge(account::routes())
        .merge(family::routes())
        .merge(kid::routes())
        .merge(assets::routes())
}

/// The router's fallback: browsers asking for a page that does not exist get an HTML page; `/api`
/// clients and everything else get problem JSON.
pub async fn fallback(request: Request) -> Response {
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let path = request.uri().path();
    if wants_html && !path.starts_with("/api/") && path != "/api" {
        PageError::new(
            StatusCode::NOT_FOUND,
            "We could not find that page. It may have moved, or the address may have a typo.",
        )
        .into_response()
    } else {
        super::error::not_found().await.into_response()
    }
}

/// Who is looking at a page: a signed-in session, or nobody. A missing or expired cookie is nobody.
pub struct Viewer(pub Option<Authenticated>);

impl Viewer {
    /// The signed-in parent, outside kid mode.
    pub fn parent(&self) -> Option<&Authenticated> {
        self.0.as_ref().filter(|a| a.role == Role::Parent && a.session.kid_child_id.is_none())
    }
}

impl<S> FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <SignedIn as OptionalFromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(signed_in) => Ok(Viewer(signed_in.map(|SignedIn(auth)| auth))),
            Err(err) => {
                tracing::error!(status = %err.status(), "looking up the session of a page request failed");
                Err(PageError::new(err.status(), SOMETHING_WENT_WRONG))
            }
        }
    }
}

/// The signed-in account as the header shows it.
pub struct AccountNav {
    pub email: String,
    pub is_parent: bool,
    pub kid_mode: bool,
}

/// What the base layout (`templates/base.html`) needs on every page.
pub struct Layout {
    pub title: String,
    /// Which top-level area this page belongs to, for `aria-current` in the navigation.
    pub section: &'static str,
    pub account: Option<AccountNav>,
    pub stylesheet: &'static str,
    pub icon: &'static str,
    /// Shown in the footer next to the policy link; `None` on error pages, which have no context.
    pub privacy_policy_version: Option<String>,
}

impl Layout {
    pub fn new(
        ctx: &crate::domain::Context,
        viewer: &Viewer,
        section: &'static str,
        title: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            section,
            account: viewer.0.as_ref().map(|auth| AccountNav {
                email: auth.user.email.clone(),
                is_parent: auth.role == Role::Parent,
                kid_mode: auth.session.kid_child_id.is_some(),
            }),
            stylesheet: assets::stylesheet(),
            icon: assets::icon(),
            privacy_policy_version: Some(ctx.config.privacy_policy_version.clone()),
        }
    }

    /// This browser is in kid mode: the header shows a child's screen, not the parent's account.
    pub fn kid_mode(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.kid_mode)
    }

    /// The layout of an error page, which knows neither the viewer nor the configuration.
    fn bare(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            section: "",
            account: None,
            stylesheet: assets::stylesheet(),
            icon: assets::icon(),
            privacy_policy_version: None,
        }
    }
}

/// One refusal of a form, tied to the field it is about (for the error summary and the field).
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// The refusals shown on a re-rendered form.
#[derive(Default)]
pub struct FormErrors {
    pub list: Vec<FieldError>,
}

impl FormErrors {
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        Self { list: vec![FieldError { field, message: sentence(&message.into()) }] }
    }

    /// The message about `field`, if there is one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.list.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Turns a domain refusal into a status and a message on a form, or into an error page when it is
/// not about the form at all. `conflict_field` is the field a conflict is shown on.
pub fn form_refusal(
    err: DomainError,
    conflict_field: &'static str,
) -> Result<(StatusCode, FormErrors), PageError> {
    match err {
        DomainError::Invalid { field, message } => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, FormErrors::one(field, message)))
        }
        DomainError::Conflict(message) => {
            Ok((StatusCode::CONFLICT, FormErrors::one(conflict_field, message)))
        }
        other => Err(other.into()),
    }
}

/// Capitalises a domain message and ends it with a full stop, for display on its own.
fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let Some(first) = chars.next() else { return String::new() };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Renders a page with a status. A template that fails to render (which the compiler mostly rules
/// out) becomes the error page.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            // Pages carry account details: never keep them in a shared cache or the back-forward cache.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            PageError::new(StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG).into_response()
        }
    }
}

/// A `303 See Other` to a path on this site, optionally setting a cookie (Post/Redirect/Get).
pub fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = axum::response::Redirect::to(location).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `next` targets are accepted only as paths on this site, so a link cannot send a parent elsewhere.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 512
        && !next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    ok.then_some(next)
}

const SOMETHING_WENT_WRONG: &str =
    "Something went wrong on our side. Nothing you did caused it. Please try again in a moment.";

/// A failure shown as a friendly HTML page (and logged when it is the server's fault), or, for a
/// page the viewer cannot see yet, a redirect to the page that lets them (sign-in, the kid-mode PIN).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after_seconds: Option<u64>,
    /// When set, the answer is `303 See Other` to this local address instead of an error page.
    pub redirect: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after_seconds: None, redirect: None }
    }

    /// Sends the browser to the sign-in page, to come back to `path` (a local path) afterwards.
    pub fn sign_in_then(path: &str) -> Self {
        Self {
            redirect: Some(with_next("/login", path)),
            ..Self::new(StatusCode::UNAUTHORIZED, "Please sign in to see this page.")
        }
    }

    /// Sends a browser in kid mode to the PIN page, to come back to `path` once a parent enters it.
    pub fn leave_kid_mode_then(path: &str) -> Self {
        Self {
            redirect: Some(with_next("/kid/leave", path)),
            ..Self::new(StatusCode::FORBIDDEN, "Kid mode is on in this browser: enter the family PIN first.")
        }
    }
}

/// `page?next=path`, with `path` kept only when it is local (else the family page).
pub fn with_next(page: &str, path: &str) -> String {
    let path = local_path(path).unwrap_or("/family");
    let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    // `/` reads better than `%2F` in the address bar and means the same in a query value.
    format!("{page}?next={}", next.replace("%2F", "/"))
}

impl From<DomainError> for PageError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound | DomainError::Storage(StorageError::NotFound) => PageError::new(
                StatusCode::NOT_FOUND,
                "We could not find that. It may have been removed, or the link may be incomplete.",
            ),
            DomainError::Unauthenticated => {
                PageError::new(StatusCode::UNAUTHORIZED, "Please sign in to see this page.")
            }
            DomainError::Forbidden(why) => PageError::new(StatusCode::FORBIDDEN, sentence(why)),
            DomainError::Invalid { message, .. } => {
                PageError::new(StatusCode::UNPROCESSABLE_ENTITY, sentence(&message))
            }
            DomainError::Conflict(message) => PageError::new(StatusCode::CONFLICT, sentence(&message)),
            DomainError::Locked { retry_after_seconds } => PageError {
                retry_after_seconds: Some(retry_after_seconds),
                ..PageError::new(
                    StatusCode::LOCKED,
                    format!(
                        "Too many wrong tries. Please try again in {} minutes.",
                        retry_after_seconds.div_ceil(60)
                    ),
                )
            },
            DomainError::Storage(StorageError::Conflict(constraint)) => {
                tracing::info!(%constraint, "write refused by a constraint");
                PageError::new(StatusCode::CONFLICT, "That conflicts with something already saved.")
            }
            err @ (DomainError::Storage(_) | DomainError::Internal(_)) => {
                tracing::error!(error = ?anyhow::Error::from(err), "page request failed");
                PageError::new(StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG)
            }
        }
    }
}

impl From<FormRejection> for PageError {
    fn from(rejection: FormRejection) -> Self {
        PageError::new(
            rejection.status(),
            "Your browser sent a form we could not read. Please go back, reload the page and try again.",
        )
    }
}

impl From<QueryRejection> for PageError {
    fn from(rejection: QueryRejection) -> Self {
        PageError::new(
            rejection.status(),
            "This address is not complete. Please check the link and try again.",
        )
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    heading: &'a str,
    message: &'a str,
    show_sign_in: bool,
}

fn heading_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::UNAUTHORIZED => "Please sign in",
        StatusCode::FORBIDDEN => "Not available here",
        StatusCode::LOCKED | StatusCode::TOO_MANY_REQUESTS => "Please wait a little",
        StatusCode::PAYLOAD_TOO_LARGE => "That was too much at once",
        s if s.is_server_error() => "Sorry, something went wrong",
        _ => "That did not work",
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Some(location) = &self.redirect {
            return see_other(location, None);
        }
        let heading = heading_for(self.status);
        let page = ErrorPage {
            layout: Layout::bare(heading),
            heading,
            message: &self.message,
            show_sign_in: self.status == StatusCode::UNAUTHORIZED,
        };
        let mut response = match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "rendering the error page failed");
                (self.status, Html(format!("<!doctype html><title>Onda</title><p>{heading}</p>")))
                    .into_response()
            }
        };
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(value) = self.retry_after_seconds.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A urlencoded form body whose rejections are HTML error pages. Missing fields are best declared
/// `#[serde(default)]` so the domain's own validation explains what is missing.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
pub struct PageForm<T>(pub T);

/// A query string whose rejections are HTML error pages.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(PageError))]
pub struct PageQuery<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/family"), Some("/family"));
        assert_eq!(local_path("/family/children?x=1"), Some("/family/children?x=1"));
        for bad in
            ["", "family", "//evil.example", "/\\evil.example", "https://evil.example", "/a b", "/a\nb"]
        {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sign_in_redirects_carry_the_way_back() {
        let response = PageError::sign_in_then("/family/children?sort=age&x=1").into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
        assert_eq!(location, Some("/login?next=/family/children%3Fsort%3Dage%26x%3D1"));
        let response = PageError::sign_in_then("//evil.example").into_response();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
        assert_eq!(location, Some("/login?next=/family"));
    }

    #[test]
    fn kid_mode_redirects_to_the_pin_and_back() {
        let response = PageError::leave_kid_mode_then("/family/children").into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
        assert_eq!(location, Some("/kid/leave?next=/family/children"));
        assert_eq!(with_next("/kid/leave", "https://evil.example"), "/kid/leave?next=/family");
    }

    #[test]
    fn domain_messages_read_as_sentences() {
        assert_eq!(sentence("use at least 10 characters"), "Use at least 10 characters.");
        assert_eq!(sentence("done!"), "Done!");
        assert_eq!(sentence(""), "");
    }
}
