//! Errors as RFC 9457 problem JSON. Handlers return [`ApiError`]; the cause is logged with the request
//! id and the client sees only a status, a safe message and that request id. Every other error
//! response (framework rejections, 404, 405, 413) is rewritten to the same shape by
//! [`problem_middleware`].

use axum::extract::Request;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::DomainError;
use crate::storage::StorageError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// What a handler failure shows the client. Attached to the response as an extension; the
/// middleware renders it with the request id.
#[derive(Clone, Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: Option<String>,
    /// For validation errors: which field was wrong.
    pub field: Option<&'static str>,
    pub retry_after_seconds: Option<u64>,
}

#[derive(Debug)]
pub struct ApiError(pub Problem);

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self(Problem {
            status,
            title: title_for(status),
            detail: Some(detail.into()),
            field: None,
            retry_after_seconds: None,
        })
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn title_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::UNAUTHORIZED => "Sign in required",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "Request too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
        StatusCode::UNPROCESSABLE_ENTITY => "Invalid input",
        StatusCode::LOCKED => "Locked",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        s if s.is_server_error() => "Something went wrong",
        _ => "Error",
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let problem = |status: StatusCode, detail: Option<String>| Problem {
            status,
            title: title_for(status),
            detail,
            field: None,
            retry_after_seconds: None,
        };
        let p = match err {
            DomainError::NotFound | DomainError::Storage(StorageError::NotFound) => {
                problem(StatusCode::NOT_FOUND, None)
            }
            DomainError::Unauthenticated => {
                problem(StatusCode::UNAUTHORIZED, Some("sign in with a valid email and password".into()))
            }
            DomainError::Forbidden(why) => problem(StatusCode::FORBIDDEN, Some(why.into())),
            DomainError::Invalid { field, message } => {
                Problem { field: Some(field), ..problem(StatusCode::UNPROCESSABLE_ENTITY, Some(message)) }
            }
            DomainError::Conflict(message) => problem(StatusCode::CONFLICT, Some(message)),
            DomainError::Storage(StorageError::Conflict(constraint)) => {
                tracing::info!(%constraint, "write refused by a constraint");
                problem(StatusCode::CONFLICT, Some("that conflicts with existing data".into()))
            }
            DomainError::Locked { retry_after_seconds } => Problem {
                retry_after_seconds: Some(retry_after_seconds),
                ..problem(
                    StatusCode::LOCKED,
                    Some(format!(
                        "too many wrong tries; try again in {} minutes",
                        retry_after_seconds.div_ceil(60)
                    )),
                )
            },
            err @ (DomainError::Storage(_) | DomainError::Internal(_)) => {
                tracing::error!(error = ?anyhow::Error::from(err), "request failed");
                problem(StatusCode::INTERNAL_SERVER_ERROR, None)
            }
        };
        ApiError(p)
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        DomainError::from(err).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // The rejection text describes the client's JSON (a missing field, a syntax error), not the server.
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.0.status.into_response();
        if let Some(value) =
            self.0.retry_after_seconds.and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(self.0);
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError(Problem {
        status: StatusCode::NOT_FOUND,
        title: title_for(StatusCode::NOT_FOUND),
        detail: None,
        field: None,
        retry_after_seconds: None,
    })
}

/// Renders every error response as problem JSON carrying the request id, unless a handler already
/// produced a body of its own kind (an HTML error page).
pub async fn problem_middleware(request: Request, next: Next) -> Response {
    let request_id =
        request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let problem = response.extensions_mut().remove::<Problem>();
    let has_own_body = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| !ct.starts_with("text/plain"));
    if problem.is_none() && has_own_body {
        return response;
    }
    let detail = match &problem {
        Some(p) => p.detail.clone(),
        // Framework rejections: their plain text describes the request, not the server.
        None if status.is_client_error() => {
            let bytes =
                axum::body::to_bytes(std::mem::take(response.body_mut()), 4096).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            (!text.is_empty()).then_some(text)
        }
        None => None,
    };
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": problem.as_ref().map_or_else(|| title_for(status), |p| p.title),
        "status": status.as_u16(),
        "requestId": request_id,
    });
    if let Some(detail) = detail {
        body["detail"] = detail.into();
    }
    if let Some(field) = problem.as_ref().and_then(|p| p.field) {
        body["field"] = field.into();
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}
