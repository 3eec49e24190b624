//! Security headers on every response, and CSRF protection for writes.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::config::Config;

/// The strict policy: only this origin, no inline script or style, no plugins, not framed by anyone.
pub const STRICT_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// With `STRICT_SECURITY_HEADERS=false`: inline styles and scripts allowed, still no third-party origin.
pub const RELAXED_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
     connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'self'; \
     frame-ancestors 'none'; form-action 'self'";

pub const PERMISSIONS_POLICY: &str = "microphone=(self), camera=(), geolocation=(), payment=(), usb=()";

pub const HSTS: &str = "max-age=63072000; includeSubDomains";

/// The headers for one response, given the configuration and whether it is an API answer.
pub fn security_headers(config: &Config, is_api: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    if is_api {
        // Private data must not sit in shared or browser caches.
        headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    }
    if !config.security_headers_enabled {
        return headers;
    }
    let csp = if config.strict_security_headers { STRICT_CSP } else { RELAXED_CSP };
    headers.extend([
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (HeaderName::from_static("permissions-policy"), HeaderValue::from_static(PERMISSIONS_POLICY)),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
        (HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin")),
    ]);
    if config.is_https() {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)));
    }
    headers
}

/// Adds the security headers to every response. A handler that set one of them itself (a page with a
/// narrower policy, a static file with its own caching) keeps its own value.
pub async fn headers_middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_api = path == "/api" || path.starts_with("/api/");
    let mut response = next.run(request).await;
    let target = response.headers_mut();
    for (name, value) in security_headers(&state.ctx.config, is_api) {
        target.entry(name).or_insert(value);
    }
    response
}

/// Refuses cross-site writes. For POST, PUT, PATCH and DELETE:
/// - a browser's `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user);
/// - otherwise an `Origin` header must name this server: the request's `Host` or the public URL;
/// - a request with neither header is not from a browser (cookies are `SameSite=Lax` as well) and passes.
pub async fn csrf_middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_safe_method(request.method()) {
        return next.run(request).await;
    }
    match cross_site_reason(request.headers(), state.ctx.config.public_url.as_ref()) {
        None => next.run(request).await,
        Some(reason) => {
            tracing::info!(
                method = %request.method(),
                path = %request.uri().path(),
                reason,
                "cross-site write refused"
            );
            ApiError::new(StatusCode::FORBIDDEN, "cross-site requests may not change anything here")
                .into_response()
        }
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Why a write looks cross-site, or `None` when it may go on.
pub fn cross_site_reason(headers: &HeaderMap, public_url: Option<&url::Url>) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().map(str::to_ascii_lowercase).as_deref() {
            Ok("same-origin" | "none") => None,
            _ => Some("sec-fetch-site"),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        // Includes `Origin: null` (sandboxed frames, some redirects).
        return Some("unreadable origin");
    };
    let Some(origin_host) = origin.host_str() else { return Some("unreadable origin") };
    let origin_port = origin.port_or_known_default();
    if let Some(public) = public_url
        && public.scheme() == origin.scheme()
        && public.host_str().is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        && public.port_or_known_default() == origin_port
    {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if host_matches(host, origin_host, origin_port) { None } else { Some("origin") }
}

/// Whether a `Host` header names the origin's host and port. A `Host` without a port matches the
/// origin's scheme default (80 or 443, as a TLS-terminating proxy forwards it).
fn host_matches(host: &str, origin_host: &str, origin_port: Option<u16>) -> bool {
    let Ok(parsed) = url::Url::parse(&format!("http://{host}")) else { return false };
    let Some(name) = parsed.host_str() else { return false };
    if !name.eq_ignore_ascii_case(origin_host) {
        return false;
    }
    match parsed.port() {
        Some(port) => Some(port) == origin_port,
        None => matches!(origin_port, Some(80 | 443)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn same_origin_writes_pass_and_cross_site_ones_do_not() {
        let none: Option<&url::Url> = None;
        assert_eq!(cross_site_reason(&headers(&[("host", "onda.example")]), none), None);
        assert_eq!(cross_site_reason(&headers(&[("sec-fetch-site", "same-origin")]), none), None);
        assert_eq!(cross_site_reason(&headers(&[("sec-fetch-site", "none")]), none), None);
        assert!(cross_site_reason(&headers(&[("sec-fetch-site", "cross-site")]), none).is_some());
        assert!(cross_site_reason(&headers(&[("sec-fetch-site", "same-site")]), none).is_some());
        let h = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3000")]);
        assert_eq!(cross_site_reason(&h, none), None);
        let h = headers(&[("host", "127.0.0.1:3000"), ("origin", "http://127.0.0.1:3001")]);
        assert!(cross_site_reason(&h, none).is_some());
        let h = headers(&[("host", "onda.example"), ("origin", "https://onda.example")]);
        assert_eq!(cross_site_reason(&h, none), None);
        let h = headers(&[("host", "onda.example"), ("origin", "https://evil.example")]);
        assert!(cross_site_reason(&h, none).is_some());
        let h = headers(&[("host", "onda.example"), ("origin", "null")]);
        assert!(cross_site_reason(&h, none).is_some());
    }

    #[test]
    fn the_public_url_is_an_accepted_origin() {
        let public = url::Url::parse("https://onda.example/").expect("url");
        let h = headers(&[("host", "10.0.0.5:3000"), ("origin", "https://onda.example")]);
        assert_eq!(cross_site_reason(&h, Some(&public)), None);
        let h = headers(&[("host", "10.0.0.5:3000"), ("origin", "http://onda.example")]);
        assert!(cross_site_reason(&h, Some(&public)).is_some());
    }

    #[test]
    fn hsts_only_under_https_and_everything_can_be_switched_off() {
        let config = |pairs: &[(&str, &str)]| {
            Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
        };
        let names = |c: &Config, api: bool| {
            security_headers(c, api).into_iter().map(|(n, _)| n.as_str().to_string()).collect::<Vec<_>>()
        };
        let plain = config(&[]);
        assert!(!names(&plain, false).contains(&"strict-transport-security".to_string()));
        assert!(names(&plain, false).contains(&"content-security-policy".to_string()));
        let https = config(&[("NEXTAUTH_URL", "https://onda.example")]);
        assert!(names(&https, false).contains(&"strict-transport-security".to_string()));
        let off = config(&[("SECURITY_HEADERS_ENABLED", "false")]);
        assert!(names(&off, false).is_empty());
        assert_eq!(names(&off, true), vec!["cache-control".to_string()]);
    }
}
