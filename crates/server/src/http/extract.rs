//! Extractors that declare what a handler needs: who is signed in and in which role, the client's
//! address, and JSON bodies whose rejections are problem JSON.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::domain::accounts::{self, Authenticated, Role};
use crate::domain::{Context, DomainError, access, consent};
use crate::storage::ChildRow;

pub const SESSION_COOKIE: &str = "onda_session";

/// A JSON body; malformed JSON becomes 400/415/422 problem JSON instead of plain text.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The client's IP address as text, when the connection info is known.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_string()),
        ))
    }
}

impl ClientIp {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// The value of one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session token: HttpOnly, SameSite=Lax, Secure under https.
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    let max_age = accounts::SESSION_LIFETIME_MS / 1000;
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("onda_session=; Path=/"))
}

pub fn clear_session_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static("onda_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure")
    } else {
        HeaderValue::from_static("onda_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
    }
}

/// Any signed-in session, in kid mode or not.
#[derive(Clone, Debug)]
pub struct SignedIn(pub Authenticated);

impl<S> FromRequestParts<S> for SignedIn
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.extensions.get::<Authenticated>() {
            return Ok(SignedIn(auth.clone()));
        }
        let state = AppState::from_ref(state);
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(DomainError::Unauthenticated)?;
        let auth = accounts::authenticate(&state.ctx, token).await?;
        // Cached so several extractors in one handler share one lookup.
        parts.extensions.insert(auth.clone());
        Ok(SignedIn(auth))
    }
}

impl<S> OptionalFromRequestParts<S> for SignedIn
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(signed_in) => Ok(Some(signed_in)),
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// A parent acting for their family, outside kid mode.
#[derive(Clone, Debug)]
pub struct ParentUser {
    pub auth: Authenticated,
    pub family_id: String,
}

impl ParentUser {
    pub fn user_id(&self) -> &str {
        &self.auth.user.id
    }
}

impl<S> FromRequestParts<S> for ParentUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if auth.session.kid_child_id.is_some() {
            return Err(DomainError::Forbidden("kid mode is on: enter the parent PIN to leave it").into());
        }
        match (auth.role, auth.user.family_id.clone()) {
            (Role::Parent, Some(family_id)) => Ok(ParentUser { auth, family_id }),
            _ => Err(DomainError::Forbidden("this is for parent accounts").into()),
        }
    }
}

/// A browser in kid mode, and the child it is for.
#[derive(Clone, Debug)]
pub struct KidSession {
    pub auth: Authenticated,
    pub child: ChildRow,
}

impl<S> FromRequestParts<S> for KidSession
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        let (Some(child_id), Some(family_id)) =
            (auth.session.kid_child_id.clone(), auth.user.family_id.clone())
        else {
            return Err(DomainError::Forbidden("a parent must open a child session first").into());
        };
        let ctx = Context::from_ref(&AppState::from_ref(state));
        // Two reads side by side (a child waits for each round trip otherwise); the child is checked first.
        let (child, chat_allowed) = tokio::join!(
            access::child_of_family(&ctx, &family_id, &child_id),
            consent::chat_allowed(&ctx, &family_id)
        );
        let child = child?;
        // Checked on every request, so revoking consent stops a child's session at once.
        if !chat_allowed? {
            return Err(DomainError::Forbidden("parental consent is not in force: ask a parent").into());
        }
        Ok(KidSession { auth, child })
    }
}

/// A moderator (administrators are moderators too).
#[derive(Clone, Debug)]
pub struct Moderator(pub Authenticated);

impl<S> FromRequestParts<S> for Moderator
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        match auth.role {
            Role::Moderator | Role::Admin => Ok(Moderator(auth)),
            Role::Parent => Err(DomainError::Forbidden("this is for moderators").into()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Admin(pub Authenticated);

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = <SignedIn as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        match auth.role {
            Role::Admin => Ok(Admin(auth)),
            _ => Err(DomainError::Forbidden("this is for administrators").into()),
        }
    }
}
