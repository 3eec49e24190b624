//! Request limits per IP and per account, as token buckets kept in memory.
//!
//! Three budgets apply (each configurable through [`Budgets`]):
//! - every request from one IP address (`general`);
//! - sign-in, sign-up, password reset and PIN entry from one IP address (`auth`), against guessing;
//! - writes by one session (`account_writes`), keyed by a hash of the session cookie.
//!
//! IPv6 clients are grouped by their /64 network, which one household usually holds. The map of buckets
//! is bounded: idle buckets (refilled to full, so identical to a new one) are pruned every minute, and
//! when the map is full anyway, new clients share one overflow bucket per budget rather than grow it.
//! Health checks and `/metrics` are exempt. Over budget: 429 problem JSON with `Retry-After`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::AppState;
use super::error::ApiError;
use super::extract::{SESSION_COOKIE, cookie};

/// `capacity` requests at once, refilled evenly over `period`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub capacity: u32,
    pub period: Duration,
}

impl Budget {
    pub const fn per_minute(capacity: u32) -> Self {
        Self { capacity, period: Duration::from_secs(60) }
    }

    fn tokens_per_second(&self) -> f64 {
        f64::from(self.capacity) / self.period.as_secs_f64().max(0.001)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Budgets {
    pub general: Budget,
    pub auth: Budget,
    pub account_writes: Budget,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            general: Budget::per_minute(300),
            // 20 at once, then 20 a minute: room for a family signing up and mistyping, not for guessing.
            auth: Budget::per_minute(20),
            account_writes: Budget::per_minute(120),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    General,
    Auth,
    AccountWrites,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::General => "general",
            Scope::Auth => "auth",
            Scope::AccountWrites => "account_writes",
        }
    }
}

/// The most buckets kept at once (about 100 bytes each).
pub const DEFAULT_MAX_KEYS: usize = 100_000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const OVERFLOW_KEY: &str = "(overflow)";

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<(Scope, String), Bucket>,
    last_prune: Option<Instant>,
}

#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    budgets: Budgets,
    max_keys: usize,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> Self {
        Self::with_budgets(enabled, Budgets::default(), DEFAULT_MAX_KEYS)
    }

    pub fn with_budgets(enabled: bool, budgets: Budgets, max_keys: usize) -> Self {
        Self {
            enabled,
            budgets,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(Buckets { map: HashMap::new(), last_prune: None }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    fn budget(&self, scope: Scope) -> Budget {
        match scope {
            Scope::General => self.budgets.general,
            Scope::Auth => self.budgets.auth,
            Scope::AccountWrites => self.budgets.account_writes,
        }
    }

    /// How many clients are tracked now (for `/metrics`).
    pub fn tracked_keys(&self) -> usize {
        self.buckets.lock().map(|b| b.map.len()).unwrap_or_default()
    }

    /// Takes one token from `key`'s bucket in `scope` at time `now`; `Err(wait)` when it is empty, with
    /// how long until the next token.
    pub fn check(&self, scope: Scope, key: &str, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let budget = self.budget(scope);
        let capacity = f64::from(budget.capacity);
        let rate = budget.tokens_per_second();
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panic while holding the lock: better to serve than to refuse everyone.
            return Ok(());
        };
        let since_prune = buckets.last_prune.map(|last| now.saturating_duration_since(last));
        let full = buckets.map.len() >= self.max_keys;
        // When full, prune again at most once a second: a flood of new addresses must not make every
        // request walk the whole map.
        if since_prune.is_none_or(|d| d >= PRUNE_EVERY || (full && d >= Duration::from_secs(1))) {
            self.prune(&mut buckets, now);
        }
        let mut map_key = (scope, key.to_string());
        if !buckets.map.contains_key(&map_key) && buckets.map.len() >= self.max_keys {
            map_key.1 = OVERFLOW_KEY.to_string();
        }
        let bucket = buckets.map.entry(map_key).or_insert(Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Drops buckets that have refilled completely: they are the same as a new one.
    fn prune(&self, buckets: &mut Buckets, now: Instant) {
        buckets.map.retain(|(scope, _), bucket| {
            let budget = self.budget(*scope);
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * budget.tokens_per_second() < f64::from(budget.capacity)
        });
        buckets.last_prune = Some(now);
    }
}

/// Paths that are never limited: probes and scrapers must always get through.
fn is_exempt(path: &str) -> bool {
    path == "/api/health" || path.starts_with("/api/health/") || path == "/metrics"
}

/// Endpoints where a guess costs the attacker one request: sign-in, sign-up, password reset, PIN.
pub fn is_auth_endpoint(path: &str) -> bool {
    matches!(path, "/api/auth/login" | "/api/auth/signup" | "/api/pin/verify")
        || path.starts_with("/api/auth/password-reset")
}

/// The key for an address: IPv4 as it is, IPv6 by its /64 network.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn session_key(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..16])
}

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limiter = &state.rate_limiter;
    let path = request.uri().path();
    if !limiter.enabled() || is_exempt(path) {
        return next.run(request).await;
    }
    let ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let ip_key = ip.map_or_else(|| "unknown".to_string(), ip_key);
    let is_write = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let mut checks = vec![(Scope::General, ip_key.clone())];
    if is_auth_endpoint(path) {
        checks.push((Scope::Auth, ip_key));
    }
    if is_write && let Some(token) = cookie(request.headers(), SESSION_COOKIE) {
        checks.push((Scope::AccountWrites, session_key(token)));
    }
    let now = Instant::now();
    for (scope, key) in checks {
        if let Err(wait) = limiter.check(scope, &key, now) {
            state.metrics.record_rate_limited(scope.as_str());
            let retry_after_seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            if scope == Scope::Auth {
                tracing::warn!(path, client = %key, retry_after_seconds, "authentication rate limit reached");
            } else {
                tracing::info!(path, scope = scope.as_str(), retry_after_seconds, "rate limit reached");
            }
            return too_many_requests(retry_after_seconds);
        }
    }
    next.run(request).await
}

fn too_many_requests(retry_after_seconds: u64) -> Response {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; try again in {retry_after_seconds} seconds"),
    );
    error.0.retry_after_seconds = Some(retry_after_seconds);
    error.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(capacity: u32, max_keys: usize) -> RateLimiter {
        let budget = Budget::per_minute(capacity);
        RateLimiter::with_budgets(
            true,
            Budgets { general: budget, auth: budget, account_writes: budget },
            max_keys,
        )
    }

    #[test]
    fn a_bucket_empties_and_refills_with_time() {
        let limiter = limiter(3, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(Scope::Auth, "1.2.3.4", t0).is_ok());
        }
        let wait = limiter.check(Scope::Auth, "1.2.3.4", t0).expect_err("empty");
        // 3 a minute: one token every 20 seconds.
        assert!((19.0..=20.0).contains(&wait.as_secs_f64()), "{wait:?}");
        // Another client and another budget are not affected.
        assert!(limiter.check(Scope::Auth, "5.6.7.8", t0).is_ok());
        assert!(limiter.check(Scope::General, "1.2.3.4", t0).is_ok());
        assert!(limiter.check(Scope::Auth, "1.2.3.4", t0 + Duration::from_secs(10)).is_err());
        assert!(limiter.check(Scope::Auth, "1.2.3.4", t0 + Duration::from_secs(20)).is_ok());
        assert!(limiter.check(Scope::Auth, "1.2.3.4", t0 + Duration::from_secs(20)).is_err());
    }

    #[test]
    fn disabled_never_refuses() {
        let budget = Budget::per_minute(1);
        let limiter = RateLimiter::with_budgets(
            false,
            Budgets { general: budget, auth: budget, account_writes: budget },
            10,
        );
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(limiter.check(Scope::Auth, "1.2.3.4", t0).is_ok());
        }
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = limiter(2, 50);
        let t0 = Instant::now();
        for i in 0..1000 {
            let _ = limiter.check(Scope::General, &format!("10.0.{}.{}", i / 256, i % 256), t0);
        }
        assert!(limiter.tracked_keys() <= 51, "{}", limiter.tracked_keys());
        // Overflowing clients share one bucket, so a flood of new addresses is still limited.
        assert!(limiter.check(Scope::General, "192.0.2.1", t0).is_err());
        // After a quiet minute, idle buckets are pruned and new clients are tracked again.
        let later = t0 + Duration::from_secs(61);
        assert!(limiter.check(Scope::General, "192.0.2.1", later).is_ok());
        assert!(limiter.tracked_keys() <= 2, "{}", limiter.tracked_keys());
    }

    #[test]
    fn ipv6_clients_are_grouped_by_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7");
    }

    #[test]
    fn auth_endpoints_and_exemptions() {
        assert!(is_auth_endpoint("/api/auth/login"));
        assert!(is_auth_endpoint("/api/auth/password-reset/confirm"));
        assert!(is_auth_endpoint("/api/pin/verify"));
        assert!(!is_auth_endpoint("/api/me"));
        assert!(is_exempt("/api/health/database"));
        assert!(is_exempt("/metrics"));
        assert!(!is_exempt("/api/healthy"));
    }
}
