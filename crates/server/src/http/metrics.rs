//! Prometheus metrics at `/metrics`, kept per application (no global recorder: several servers can
//! run in one process, as the tests do).
//!
//! Requests are counted by method, route template (`/api/health/{part}`, never a raw path with an id)
//! and status class, with a duration histogram. Gauges (pending jobs, database reachability) are
//! computed at scrape time.
//!
//! Access on the main listener: with `ONDA_METRICS_TOKEN` set, `Authorization: Bearer <token>`;
//! without it, only clients on the loopback interface that did not come through a proxy. Anyone else
//! gets the same 404 as an unknown path. `ONDA_METRICS_BIND` serves `/metrics` on a separate listener
//! (a private network) where no token is needed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::not_found;
use crate::config::Config;

/// Upper bounds of the duration histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const SCRAPE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Series {
    /// Responses by status class: 1xx to 5xx.
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

#[derive(Debug)]
pub struct Metrics {
    started_at: SystemTime,
    in_flight: AtomicI64,
    series: RwLock<HashMap<(&'static str, String), Arc<Series>>>,
    rate_limited: RwLock<HashMap<&'static str, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started_at: SystemTime::now(),
            in_flight: AtomicI64::new(0),
            series: RwLock::new(HashMap::new()),
            rate_limited: RwLock::new(HashMap::new()),
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl Metrics {
    /// Counts one finished request. `route` is the route template, or `None` when nothing matched.
    pub fn record_request(&self, method: &Method, route: Option<&str>, status: StatusCode, took: Duration) {
        let key = (method_label(method), route.unwrap_or("unmatched").to_string());
        let existing = self.series.read().ok().and_then(|map| map.get(&key).cloned());
        let series = match existing {
            Some(series) => series,
            None => match self.series.write() {
                Ok(mut map) => map.entry(key).or_default().clone(),
                Err(_) => return,
            },
        };
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        series.by_class[class].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        for (bound, bucket) in DURATION_BUCKETS.iter().zip(&series.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        series.count.fetch_add(1, Ordering::Relaxed);
        series.sum_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn record_rate_limited(&self, scope: &'static str) {
        if let Ok(mut map) = self.rate_limited.write() {
            *map.entry(scope).or_default() += 1;
        }
    }

    /// The counters in the Prometheus text format.
    pub fn render_counters(&self, out: &mut String) {
        let mut series: Vec<((&'static str, String), Arc<Series>)> = self
            .series
            .read()
            .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        series.sort_by(|a, b| (&a.0.1, a.0.0).cmp(&(&b.0.1, b.0.0)));

        out.push_str(
            "# HELP onda_http_requests_total HTTP requests by method, route template and status class.\n",
        );
        out.push_str("# TYPE onda_http_requests_total counter\n");
        for ((method, route), s) in &series {
            for (i, count) in s.by_class.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "onda_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{}xx\"}} {count}",
                        escape(route),
                        i + 1
                    );
                }
            }
        }
        out.push_str("# HELP onda_http_request_duration_seconds Time to answer HTTP requests.\n");
        out.push_str("# TYPE onda_http_request_duration_seconds histogram\n");
        for ((method, route), s) in &series {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (bound, bucket) in DURATION_BUCKETS.iter().zip(&s.buckets) {
                let _ = writeln!(
                    out,
                    "onda_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ =
                writeln!(out, "onda_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
            let sum = s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "onda_http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "onda_http_request_duration_seconds_count{{{labels}}} {count}");
        }
        out.push_str("# HELP onda_http_requests_in_flight HTTP requests being answered now.\n");
        out.push_str("# TYPE onda_http_requests_in_flight gauge\n");
        let _ = writeln!(out, "onda_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));

        let mut limited: Vec<(&'static str, u64)> =
            self.rate_limited.read().map(|m| m.iter().map(|(k, v)| (*k, *v)).collect()).unwrap_or_default();
        limited.sort();
        out.push_str("# HELP onda_rate_limited_total Requests refused by a rate limit, by budget.\n");
        out.push_str("# TYPE onda_rate_limited_total counter\n");
        for (scope, count) in limited {
            let _ = writeln!(out, "onda_rate_limited_total{{scope=\"{scope}\"}} {count}");
        }
        let started = self.started_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
        out.push_str("# HELP onda_start_time_seconds When this server started, in Unix seconds.\n");
        out.push_str("# TYPE onda_start_time_seconds gauge\n");
        let _ = writeln!(out, "onda_start_time_seconds {started}");
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The whole scrape: counters plus gauges read now.
pub async fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(4096);
    state.metrics.render_counters(&mut out);
    let store = &state.ctx.store;
    out.push_str("# HELP onda_build_info The running version and database backend.\n");
    out.push_str("# TYPE onda_build_info gauge\n");
    let _ = writeln!(
        out,
        "onda_build_info{{version=\"{}\",backend=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        store.backend_name()
    );
    out.push_str("# HELP onda_rate_limiter_tracked_clients Clients the rate limiter remembers now.\n");
    out.push_str("# TYPE onda_rate_limiter_tracked_clients gauge\n");
    let _ = writeln!(out, "onda_rate_limiter_tracked_clients {}", state.rate_limiter.tracked_keys());
    let pending = tokio::time::timeout(SCRAPE_QUERY_TIMEOUT, store.pending_job_count()).await;
    out.push_str("# HELP onda_database_up Whether the database answered this scrape.\n");
    out.push_str("# TYPE onda_database_up gauge\n");
    match pending {
        Ok(Ok(pending)) => {
            out.push_str("onda_database_up 1\n");
            out.push_str("# HELP onda_jobs_pending Queued jobs not done yet.\n");
            out.push_str("# TYPE onda_jobs_pending gauge\n");
            let _ = writeln!(out, "onda_jobs_pending {pending}");
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "metrics: the database did not answer");
            out.push_str("onda_database_up 0\n");
        }
        Err(_) => {
            tracing::warn!("metrics: the database did not answer in time");
            out.push_str("onda_database_up 0\n");
        }
    }
    out
}

fn text_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// The router of the separate `ONDA_METRICS_BIND` listener: `/metrics` only, no token.
pub fn standalone_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { text_response(render(&state).await) }),
        )
        .with_state(state)
}

async fn scrape(State(state): State<AppState>, request: Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
    if !may_scrape(&state.ctx.config, request.headers(), peer) {
        // The same answer as an unknown path: do not reveal that metrics exist.
        return not_found().await.into_response();
    }
    text_response(render(&state).await)
}

/// Whether this request may read `/metrics` on the main listener.
pub fn may_scrape(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> bool {
    if let Some(token) = &config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        return presented.is_some_and(|p| same_secret(p, token.expose()));
    }
    let proxied = headers.contains_key("forwarded") || headers.contains_key("x-forwarded-for");
    let loopback = peer.is_some_and(|p| match p.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    });
    loopback && !proxied
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decrements the in-flight gauge even when the client goes away mid-request.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    state.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let _guard = InFlight(&state.metrics.in_flight);
    let response = next.run(request).await;
    state.metrics.record_request(&method, route.as_deref(), response.status(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_template_and_class() {
        let metrics = Metrics::default();
        let ms = Duration::from_millis(3);
        metrics.record_request(&Method::GET, Some("/api/children/{id}"), StatusCode::OK, ms);
        metrics.record_request(&Method::GET, Some("/api/children/{id}"), StatusCode::NOT_FOUND, ms);
        metrics.record_request(
            &Method::GET,
            Some("/api/children/{id}"),
            StatusCode::OK,
            Duration::from_secs(3),
        );
        metrics.record_request(
            &Method::from_bytes(b"BREW").expect("method"),
            None,
            StatusCode::NOT_FOUND,
            ms,
        );
        let mut out = String::new();
        metrics.render_counters(&mut out);
        assert!(out.contains(
            "onda_http_requests_total{method=\"GET\",route=\"/api/children/{id}\",status=\"2xx\"} 2"
        ));
        assert!(out.contains(
            "onda_http_requests_total{method=\"GET\",route=\"/api/children/{id}\",status=\"4xx\"} 1"
        ));
        assert!(
            out.contains("onda_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"4xx\"} 1")
        );
        assert!(out.contains(
            "onda_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/children/{id}\",le=\"0.005\"} 2"
        ));
        assert!(out.contains(
            "onda_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/children/{id}\",le=\"+Inf\"} 3"
        ));
        assert!(out.contains(
            "onda_http_request_duration_seconds_count{method=\"GET\",route=\"/api/children/{id}\"} 3"
        ));
    }

    #[test]
    fn scraping_needs_the_token_or_loopback() {
        let config = |pairs: &[(&str, &str)]| {
            Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid")
        };
        let local: Option<SocketAddr> = Some("127.0.0.1:5000".parse().expect("addr"));
        let remote: Option<SocketAddr> = Some("203.0.113.9:5000".parse().expect("addr"));
        let open = config(&[]);
        assert!(may_scrape(&open, &HeaderMap::new(), local));
        assert!(!may_scrape(&open, &HeaderMap::new(), remote));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert!(!may_scrape(&open, &proxied, local));

        let locked = config(&[("ONDA_METRICS_TOKEN", "scrape-me")]);
        assert!(!may_scrape(&locked, &HeaderMap::new(), local));
        let mut good = HeaderMap::new();
        good.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer scrape-me"));
        assert!(may_scrape(&locked, &good, remote));
        let mut bad = HeaderMap::new();
        bad.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer scrape-you"));
        assert!(!may_scrape(&locked, &bad, local));
    }
}
