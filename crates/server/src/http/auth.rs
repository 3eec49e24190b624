//! `/api/auth/*` and `/api/me`: sign-up, login, logout, email verification, password reset.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ClientIp, SignedIn, clear_session_cookie, session_cookie};
use crate::domain::Context;
use crate::domain::consent::{self, ConsentStatus};
use crate::domain::{accounts, pin};
use crate::storage::UserRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(sign_up))
        .route("/auth/login", post(log_in))
        .route("/auth/logout", post(log_out))
        .route("/auth/verify-email", post(verify_email))
        .route("/auth/verify-email/resend", post(resend_verification))
        .route("/auth/password-reset", post(request_password_reset))
        .route("/auth/password-reset/confirm", post(confirm_password_reset))
        .route("/me", get(me))
}

#[derive(Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub role: String,
    pub email_verified: bool,
    pub family_id: Option<String>,
}

impl From<&UserRow> for AccountView {
    fn from(user: &UserRow) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            role: user.role.clone(),
            email_verified: user.email_verified_at.is_some(),
            family_id: user.family_id.clone(),
        }
    }
}

/// Signs up and signs in at once: the new parent lands in their session, with a verification email sent.
async fn sign_up(
    State(ctx): State<Context>,
    ip: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    accounts::sign_up(&ctx, &body.email, &body.password, ip.as_deref()).await?;
    let (token, user) = accounts::log_in(&ctx, &body.email, &body.password, ip.as_deref()).await?;
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, session_cookie(&token, ctx.config.is_https()))],
        ApiJson(AccountView::from(&user)),
    )
        .into_response())
}

async fn log_in(
    State(ctx): State<Context>,
    ip: ClientIp,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let (token, user) = accounts::log_in(&ctx, &body.email, &body.password, ip.as_deref()).await?;
    Ok((
        [(header::SET_COOKIE, session_cookie(&token, ctx.config.is_https()))],
        ApiJson(AccountView::from(&user)),
    )
        .into_response())
}

async fn log_out(State(ctx): State<Context>, signed_in: Option<SignedIn>) -> ApiResult<Response> {
    if let Some(SignedIn(auth)) = signed_in {
        accounts::log_out(&ctx, &auth).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear_session_cookie(ctx.config.is_https()))])
        .into_response())
}

#[derive(Deserialize)]
pub struct TokenBody {
    pub token: String,
}

async fn verify_email(
    State(ctx): State<Context>,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<ApiJson<AccountView>> {
    let user = accounts::verify_email(&ctx, &body.token).await?;
    Ok(ApiJson(AccountView::from(&user)))
}

async fn resend_verification(State(ctx): State<Context>, SignedIn(auth): SignedIn) -> ApiResult<StatusCode> {
    if auth.user.email_verified_at.is_none() {
        accounts::send_verification_email(&ctx, &auth.user).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub struct ResetRequest {
    pub email: String,
}

async fn request_password_reset(
    State(ctx): State<Context>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> ApiResult<StatusCode> {
    accounts::request_password_reset(&ctx, &body.email, ip.as_deref()).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub struct ResetConfirm {
    pub token: String,
    pub password: String,
}

async fn confirm_password_reset(
    State(ctx): State<Context>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> ApiResult<StatusCode> {
    accounts::reset_password(&ctx, &body.token, &body.password, ip.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    #[serde(flatten)]
    pub account: AccountView,
    /// The child this browser is in kid mode for, if any.
    pub kid_mode_child_id: Option<String>,
    /// Parents only: the family's consent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentStatus>,
    /// Parents only: whether the family PIN is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_pin: Option<bool>,
}

async fn me(State(ctx): State<Context>, SignedIn(auth): SignedIn) -> ApiResult<ApiJson<MeView>> {
    let (consent, has_pin) = match (auth.role, auth.user.family_id.as_deref()) {
        (accounts::Role::Parent, Some(family_id)) => {
            (Some(consent::status(&ctx, family_id).await?), Some(pin::has_pin(&ctx, family_id).await?))
        }
        _ => (None, None),
    };
    Ok(ApiJson(MeView {
        account: AccountView::from(&auth.user),
        kid_mode_child_id: auth.session.kid_child_id.clone(),
        consent,
        has_pin,
    }))
}
