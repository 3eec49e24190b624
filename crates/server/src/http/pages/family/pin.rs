//! `/family/pin`: set or change the family PIN with `domain::pin::set`, as `PUT /api/pin` does.
//! Changing it takes the current PIN or the account password (the way back in when the PIN is
//! forgotten or locked). PINs are never filled back into a form.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{NoticeQuery, SectionLink, family_notice, family_of, require_parent, section_links};
use crate::domain::accounts::Authenticated;
use crate::domain::pin::{self, SetPin};
use crate::domain::{Context, DomainError};
use crate::http::AppState;
use crate::http::extract::ClientIp;
use crate::http::pages::{
    FormErrors, Layout, PageError, PageForm, PageQuery, Viewer, form_refusal, render, see_other,
};

pub fn routes() -> Router<AppState> {
    Router::new().route("/family/pin", get(pin_page).post(set_pin))
}

const PAGE: &str = "/family/pin";

#[derive(Template)]
#[template(path = "family/pin.html")]
struct PinPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    has_pin: bool,
    max_tries: i64,
    lock_minutes: i64,
    errors: FormErrors,
}

async fn pin_page_for(
    ctx: &Context,
    viewer: &Viewer,
    auth: &Authenticated,
    notice: Option<&'static str>,
    errors: FormErrors,
) -> Result<PinPage, PageError> {
    Ok(PinPage {
        layout: Layout::new(ctx, viewer, "family", "Family PIN"),
        sections: section_links(PAGE),
        notice,
        has_pin: pin::has_pin(ctx, family_of(auth)?).await?,
        max_tries: pin::MAX_FAILED_ATTEMPTS,
        lock_minutes: pin::LOCK_MS / 60_000,
        errors,
    })
}

async fn pin_page(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let page = pin_page_for(&ctx, &viewer, auth, family_notice(&query.notice), FormErrors::default()).await?;
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct PinForm {
    pub pin: String,
    /// The new PIN typed again, to catch a typo before it locks a parent out.
    pub pin_again: String,
    pub current_pin: String,
    pub current_password: String,
}

async fn set_pin(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<PinForm>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let had_pin = pin::has_pin(&ctx, family_of(auth)?).await?;
    let (status, errors) = if let Err(err) = pin::check_pin_format(&form.pin) {
        form_refusal(err, "pin")?
    } else if form.pin.trim() != form.pin_again.trim() {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            FormErrors::one("pinAgain", "The two new PINs are not the same. Type the new PIN twice"),
        )
    } else {
        // The password wins when both are given, as in the domain: the refusal is about it.
        let checked_field = if form.current_password.is_empty() { "currentPin" } else { "currentPassword" };
        let input = SetPin {
            pin: form.pin,
            current_pin: Some(form.current_pin),
            current_password: Some(form.current_password),
        };
        match pin::set(&ctx, auth, input, ip.as_deref()).await {
            Ok(()) => {
                let notice = if had_pin { "pin-changed" } else { "pin-set" };
                return Ok(see_other(&format!("{PAGE}?notice={notice}"), None));
            }
            Err(DomainError::Forbidden(why)) => (StatusCode::FORBIDDEN, FormErrors::one(checked_field, why)),
            Err(DomainError::Locked { retry_after_seconds }) => (
                StatusCode::LOCKED,
                FormErrors::one(
                    "currentPin",
                    format!(
                        "The PIN is locked after too many wrong tries. Use your account password instead, or try the PIN again in {} minutes",
                        retry_after_seconds.div_ceil(60)
                    ),
                ),
            ),
            Err(err) => form_refusal(err, "pin")?,
        }
    };
    let page = pin_page_for(&ctx, &viewer, auth, None, errors).await?;
    Ok(render(status, &page))
}
