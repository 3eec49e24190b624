//! Buddy chat, nested under `/api`:
//!
//! - `POST /chat` (kid mode, consent in force) `{text, whisper?}`: answers `text/event-stream` with the
//!   events `verdict` `{level, action}` (the child's message), `notice` `{kind, text, resources?}`,
//!   `delta` `{text}` (the reply, one safe sentence at a time; concatenate them) and finally `done`
//!   `{messageId, level, provider, whisper}`. A time limit (session length, daily limit, quiet hours)
//!   is a friendly refusal inside the stream (a `notice` of kind `break`, `daily_limit` or
//!   `quiet_hours`, then `done` with a null `messageId`), not an HTTP error, so the kid UI can show it
//!   in the buddy's voice. Bad text is 422; a second message while a reply runs is 409.
//! - `GET /chat/history?before=&limit=` (kid mode): this kid session's messages, oldest first in each
//!   page, child-safe fields only.
//! - `GET|PUT /children/{id}/limits` (parent): the child's daily limit, quiet hours and UTC offset.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::error::ApiResult;
use super::extract::{ApiJson, KidSession, ParentUser};
use crate::domain::Context;
use crate::domain::conversation::limits::{self, ChildLimits, LimitsInput};
use crate::domain::conversation::{self, ChatEvent, ChatInput, HistoryPage, KidChat};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat", post(chat))
        .route("/chat/history", get(history))
        .route("/children/{id}/limits", get(get_limits).put(put_limits))
}

fn kid_chat(kid: &KidSession) -> KidChat {
    KidChat { session_key: conversation::session_key(&kid.auth.token_hash), child: kid.child.clone() }
}

async fn chat(
    State(ctx): State<Context>,
    kid: KidSession,
    ApiJson(body): ApiJson<ChatInput>,
) -> ApiResult<Response> {
    let events = conversation::send(&ctx, kid_chat(&kid), body).await?;
    let stream = futures::stream::unfold(events, |mut events| async move {
        let event: ChatEvent = events.recv().await?;
        let sse = Event::default().event(event.name()).data(event.payload().to_string());
        Some((Ok::<_, Infallible>(sse), events))
    });
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx must pass each sentence on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

async fn history(
    State(ctx): State<Context>,
    kid: KidSession,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<ApiJson<HistoryPage>> {
    Ok(ApiJson(conversation::history(&ctx, &kid_chat(&kid), query.before, query.limit).await?))
}

async fn get_limits(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ChildLimits>> {
    Ok(ApiJson(limits::get(&ctx, &parent.family_id, &id).await?))
}

async fn put_limits(
    State(ctx): State<Context>,
    parent: ParentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LimitsInput>,
) -> ApiResult<ApiJson<ChildLimits>> {
    Ok(ApiJson(limits::set(&ctx, parent.user_id(), &parent.family_id, &id, body).await?))
}
