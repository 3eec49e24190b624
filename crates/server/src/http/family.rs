//! The family API, nested under `/api`:
//!
//! - `GET /consent` (parent): the family's [`ConsentStatus`].
//! - `POST /consent` (parent) `{privacyPolicyVersion, termsVersion, cloudAi}`: gives consent ("email plus":
//!   the email must be verified; a confirmation email with a revoke link follows after
//!   `ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS`). `cloudAi: false` revokes cloud AI. Answers the status.
//! - `DELETE /consent` (parent): revokes COPPA consent, cloud AI with it, and signs out every browser of
//!   the family in kid mode. Answers the status.
//! - `DELETE /consent/cloud-ai` (parent): revokes only cloud AI. Answers the status.
//! - `POST /consent/revoke-link` `{token}` (no sign-in: the emailed link is the credential): revokes the
//!   consent the link names; answers `{"revoked": "coppa" | "cloudAi"}`.
//! - `GET /children`, `POST /children` `{displayName, age, persona}` (201), `GET|PUT|DELETE
//!   /children/{id}` (PUT takes any of the three fields; DELETE answers 204). Another family's child
//!   is 404.
//! - `POST /children/{id}/session` (parent): puts this browser in kid mode for the child; needs a PIN and
//!   consent in force (when required). Answers the [`KidView`].
//! - `GET /kid/session` (kid mode): the child's first name, age and persona, for the kid UI.
//! - `PUT /pin` (parent, not in kid mode) `{pin, currentPin?, currentPassword?}`: 204.
//! - `POST /pin/verify` `{pin}` (any parent session): 204, and leaves kid mode; a wrong PIN is 403
//!   naming the tries left, a locked PIN 423 with `Retry-After`.
//! - `GET /audit?limit=N` (parent): the family's audit log, newest first (default 100, at most 1000).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, ClientIp, KidSession, ParentUser, SignedIn};
use crate::domain::Context;
use crate::domain::audit::{self, AuditView};
use crate::domain::children::{self, ChildUpdate, ChildView, NewChild};
use crate::domain::consent::{self, ConsentKind, ConsentStatus, GiveConsent};
use crate::domain::pin::{self, KidView, SetPin};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/consent", get(consent_status).post(give_consent).delete(revoke_consent))
        .route("/consent/cloud-ai", delete(revoke_cloud_ai))
        .route("/consent/revoke-link", post(revoke_by_link))
        .route("/children", get(list_children).post(create_child))
        .route("/children/{id}", get(get_child).put(update_child).delete(delete_child))
        .route("/children/{id}/session", post(enter_kid_mode))
        .route("/kid/session", get(kid_session))
        .route("/pin", put(set_pin))
        .route("/pin/verify", post(verify_pin))
        .route("/audit", get(audit_log))
}

async fn consent_status(State(ctx): State<Context>, parent: ParentUser) -> ApiResult<ApiJson<ConsentStatus>> {
    Ok(ApiJson(consent::status(&ctx, &parent.family_id).await?))
}

async fn give_consent(
    State(ctx): State<Context>,
    parent: ParentUser,
    ip: ClientIp,
    ApiJson(body): ApiJson<GiveConsent>,
) -> ApiResult<ApiJson<ConsentStatus>> {
    Ok(ApiJson(consent::give(&ctx, parent.user_id(), &parent.family_id, ip.as_deref(), body).await?))
}

async fn revoke_consent(
    State(ctx): State<Context>,
    parent: ParentUser,
    ip: ClientIp,
) -> ApiResult<ApiJson<ConsentStatus>> {
    let status =
        consent::revoke(&ctx, parent.user_id(), &parent.family_id, ConsentKind::Coppa, ip.as_deref()).await?;
    Ok(ApiJson(status))
}

async fn revoke_cloud_ai(
    State(ctx): State<Context>,
    parent: ParentUser,
    ip: ClientIp,
) -> ApiResult<ApiJson<ConsentStatus>> {
    let status =
        consent::revoke(&ctx, parent.user_id(), &parent.family_id, ConsentKind::CloudAi, ip.as_deref())
            .await?;
    Ok(ApiJson(status))
}

#[derive(Deserialize)]
pub struct TokenBody {
    pub token: String,
}

#[derive(Serialize)]
pub struct Revoked {
    pub revoked: ConsentKind,
}

async fn revoke_by_link(
    State(ctx): State<Context>,
    ip: ClientIp,
    ApiJson(body): ApiJson<TokenBody>,
) -> ApiResult<ApiJson<Revoked>> {
    let kind = consent::revoke_by_link_from(&ctx, &body.token, ip.as_deref()).await?;
    Ok(ApiJson(Revoked { revoked: kind }))
}

async fn list_children(State(ctx): State<Context>, parent: ParentUser) -> ApiResult<ApiJson<Vec<ChildView>>> {
    Ok(ApiJson(children::list(&ctx, &parent.family_id).await?))
}

async fn create_child(
    State(ctx): State<Context>,
    parent: ParentUser,
    ApiJson(body): ApiJson<NewChild>,
) -> ApiResult<(StatusCode, ApiJson<ChildView>)> {
    let child = children::create(&ctx, parent.user_id(), &parent.family_id, body).await?;
    Ok((StatusCode::CREATED, ApiJson(child)))
}

async fn get_child(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ChildView>> {
    Ok(ApiJson(children::get(&ctx, &parent.family_id, &id).await?))
}

async fn update_child(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ChildUpdate>,
) -> ApiResult<ApiJson<ChildView>> {
    Ok(ApiJson(children::update(&ctx, parent.user_id(), &parent.family_id, &id, body).await?))
}

async fn delete_child(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    children::delete(&ctx, parent.user_id(), &parent.family_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enter_kid_mode(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<KidView>> {
    Ok(ApiJson(pin::enter_kid_mode(&ctx, &parent.auth, &id).await?))
}

async fn kid_session(kid: KidSession) -> ApiJson<KidView> {
    ApiJson(KidView::from(&ChildView::from(&kid.child)))
}

async fn set_pin(
    State(ctx): State<Context>,
    parent: ParentUser,
    ip: ClientIp,
    ApiJson(body): ApiJson<SetPin>,
) -> ApiResult<StatusCode> {
    pin::set(&ctx, &parent.auth, body, ip.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    pub pin: String,
}

async fn verify_pin(
    State(ctx): State<Context>,
    SignedIn(auth): SignedIn,
    ip: ClientIp,
    ApiJson(body): ApiJson<PinBody>,
) -> ApiResult<StatusCode> {
    pin::leave_kid_mode(&ctx, &auth, &body.pin, ip.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct AuditQuery {
    pub limit: Option<i64>,
}

async fn audit_log(
    State(ctx): State<Context>,
    parent: ParentUser,
    Query(query): Query<AuditQuery>,
) -> ApiResult<ApiJson<Vec<AuditView>>> {
    Ok(ApiJson(audit::family_log(&ctx, &parent.family_id, query.limit.unwrap_or(100)).await?))
}
