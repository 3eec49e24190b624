//! Operations: health, security headers, CSRF, body limits, rate limits, metrics, migrate, backup and
//! restore, and the `health-check` command.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp, assert_problem};
use onda::cli::ops;
use onda::storage::testing::{Backend, TestDatabase};
use onda::storage::{DatabaseLocation, Store};

backend_tests!(
    health_answers_in_the_guide_shape,
    a_broken_database_makes_health_unhealthy,
    migrate_applies_and_reports_versions,
    backup_and_restore_round_trip,
    restore_refuses_what_is_not_an_onda_backup,
    health_check_command_exit_codes,
);

const PARTS: [&str; 5] = ["database", "safety", "ai", "voice", "email"];

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn assert_check_shape(name: &str, check: &Value) {
    assert!(check["healthy"].is_boolean(), "{name}.healthy: {check}");
    assert!(check["responseTime"].is_number(), "{name}.responseTime: {check}");
}

async fn health_answers_in_the_guide_shape(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("OPENAI_API_KEY", "sk-test-very-secret")]).await;
    let response = app.get(&app.client, "/api/health").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
    let text = response.text().await.expect("body");
    assert!(!text.contains("sk-test-very-secret"), "a secret leaked: {text}");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    // The safety engine is not built yet: that makes the service degraded, never unhealthy.
    assert_eq!(body["status"], "degraded");
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .expect("timestamp is RFC 3339");
    let checks = body["checks"].as_object().expect("checks");
    assert_eq!(checks.len(), PARTS.len());
    for part in PARTS {
        assert_check_shape(part, &checks[part]);
    }
    let database = &checks["database"];
    assert_eq!(database["healthy"], true);
    assert_eq!(database["critical"], true);
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(database["backend"], backend_name);
    assert_eq!(database["migrations"]["pending"], 0);
    assert_eq!(checks["safety"]["healthy"], true);
    assert_eq!(checks["safety"]["status"], "ok");
    assert_eq!(checks["safety"]["canariesFailed"], 0);
    assert_eq!(checks["safety"]["layers"]["rules"], true);
    assert_eq!(checks["safety"]["configured"]["layerRedundancy"], true);
    assert_eq!(checks["ai"]["configured"]["openai"]["apiKey"], true);
    assert_eq!(checks["ai"]["configured"]["anthropic"]["apiKey"], false);
    assert_eq!(checks["ai"]["configured"]["local"]["modelPresent"], false);
    assert_eq!(checks["voice"]["configured"]["provider"], "local");
    assert_eq!(checks["email"]["healthy"], true);
    assert!(checks["email"]["mailer"].as_str().expect("mailer").contains("outbox"));

    // Each part alone, in the same envelope.
    for part in PARTS {
        let response = app.get(&app.client, &format!("/api/health/{part}")).await;
        assert_eq!(response.status(), 200, "{part}");
        let body = json_of(response).await;
        let checks = body["checks"].as_object().expect("checks");
        assert_eq!(checks.keys().collect::<Vec<_>>(), vec![part]);
        assert_check_shape(part, &checks[part]);
        assert!(body["timestamp"].is_string());
        let expected = if checks[part]["healthy"] == true { "healthy" } else { "degraded" };
        assert_eq!(body["status"], expected, "{part}");
    }
    assert_eq!(json_of(app.get(&app.client, "/api/health/database").await).await["status"], "healthy");
    assert_problem(app.get(&app.client, "/api/health/kitchen-sink").await, 404).await;
}

async fn a_broken_database_makes_health_unhealthy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ctx.store.close().await;
    for path in ["/api/health/database", "/api/health"] {
        let response = app.get(&app.client, path).await;
        assert_eq!(response.status(), 503, "{path}");
        let text = response.text().await.expect("body");
        let body: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["checks"]["database"]["healthy"], false);
        assert_eq!(body["checks"]["database"]["error"], "database unreachable");
        assert_check_shape("database", &body["checks"]["database"]);
        // No internal error text reaches the client.
        for internal in ["closed", "pool", "sqlx", "error returned"] {
            assert!(!text.to_lowercase().contains(internal), "{internal} leaked: {text}");
        }
    }
    // A part that does not need the database still answers.
    assert_eq!(app.get(&app.client, "/api/health/email").await.status(), 200);
}

fn config_for(db: &TestDatabase, data_dir: &Path) -> onda::Config {
    onda::Config::from_vars([
        ("DATABASE_URL".to_string(), db.url()),
        ("ONDA_DATA_DIR".to_string(), data_dir.display().to_string()),
    ])
    .expect("valid configuration")
}

async fn migrate_applies_and_reports_versions(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let data = tempfile::tempdir().expect("temporary directory");
    let config = config_for(&db, data.path());
    let first = ops::run_migrations(&config).await.expect("migrate");
    assert_eq!(first.backend, db.location.backend_name());
    assert!(first.newly_applied.iter().any(|(v, d)| *v == 1 && d == "foundation"), "{first:?}");
    assert_eq!(first.applied, first.newly_applied);
    let second = ops::run_migrations(&config).await.expect("migrate again");
    assert!(second.newly_applied.is_empty());
    assert_eq!(second.applied, first.applied);
}

async fn backup_and_restore_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "kept@example.com").await;
    let config = app.ctx.config.clone();
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = dir.path().join("onda-backup");

    if backend == Backend::Postgres && ops::find_tool("pg_dump").is_none() {
        let err = ops::backup_database(&config, &target, false).await.expect_err("pg_dump is missing");
        assert!(err.to_string().contains("pg_dump was not found on PATH"), "{err:#}");
        return;
    }
    let report = ops::backup_database(&config, &target, false).await.expect("backup");
    assert_eq!(report.path, target);
    assert!(report.bytes > 0);
    // An existing file is not replaced by accident, but is when asked.
    let err = ops::backup_database(&config, &target, false).await.expect_err("target exists");
    assert!(err.to_string().contains("--force"), "{err:#}");
    // A folder receives a file named after the time.
    let in_folder = ops::backup_database(&config, dir.path(), false).await.expect("backup into a folder");
    assert_eq!(in_folder.path.parent(), Some(dir.path()));
    assert!(in_folder.path.file_name().expect("name").to_string_lossy().starts_with("onda-backup-"));

    // Life goes on after the backup.
    app.sign_up(&TestApp::new_client(), "later@example.com").await;
    let err = ops::restore_database(&config, &target, false).await.expect_err("the database holds data");
    assert!(err.to_string().contains("--force"), "{err:#}");

    // Restore with the server's connections closed, as an operator stops the server first.
    app.ctx.store.close().await;
    let report = ops::restore_database(&config, &target, true).await.expect("restore");
    if backend == Backend::Sqlite {
        let previous = report.previous.expect("the replaced database is kept");
        assert!(previous.is_file());
    }
    let store = Store::open(&DatabaseLocation::from_config(&config)).await.expect("restored database opens");
    assert!(store.user_by_email("kept@example.com").await.expect("query").is_some());
    assert!(store.user_by_email("later@example.com").await.expect("query").is_none());
    store.close().await;
}

async fn restore_refuses_what_is_not_an_onda_backup(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = app.ctx.config.clone();
    let dir = tempfile::tempdir().expect("temporary directory");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database").expect("write");
    if backend == Backend::Postgres && ops::find_tool("pg_restore").is_none() {
        let err = ops::restore_database(&config, &junk, true).await.expect_err("pg_restore is missing");
        assert!(err.to_string().contains("pg_restore was not found on PATH"), "{err:#}");
        return;
    }
    let err = ops::restore_database(&config, &junk, true).await.expect_err("junk is refused");
    let expected = match backend {
        Backend::Sqlite => "is not a SQLite database",
        Backend::Postgres => "is not a PostgreSQL custom-format dump",
    };
    assert!(err.to_string().contains(expected), "{err:#}");
    let err = ops::restore_database(&config, &dir.path().join("missing"), true).await.expect_err("missing");
    assert!(err.to_string().contains("there is no backup file"), "{err:#}");

    if backend == Backend::Sqlite {
        // A SQLite database that is not Onda's.
        let other = dir.path().join("other.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&other).create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("create");
        sqlx::query("CREATE TABLE notes (body TEXT)").execute(&pool).await.expect("table");
        pool.close().await;
        let err = ops::restore_database(&config, &other, true).await.expect_err("not Onda's");
        assert!(err.to_string().contains("not an Onda one"), "{err:#}");
    }
    // The database is untouched.
    assert_eq!(app.get(&app.client, "/api/health/database").await.status(), 200);
}

/// Runs the built `onda` binary with only the given environment.
async fn run_onda(args: &[&str], env: &[(&str, String)], cwd: &Path) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onda"));
    command.args(args).env_clear().current_dir(cwd).env("LOG_LEVEL", "error");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().await.expect("onda runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

async fn health_check_command_exit_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cwd = tempfile::tempdir().expect("temporary directory");
    let env = |database_url: String| {
        vec![
            ("DATABASE_URL", database_url),
            ("ONDA_DATA_DIR", app.data_dir.display().to_string()),
            ("ONDA_MODELS_DIR", app.data_dir.join("models").display().to_string()),
        ]
    };

    // In-process, from the configuration.
    let output = run_onda(&["health-check"], &env(app.db.url()), cwd.path()).await;
    let out = stdout(&output);
    assert!(output.status.success(), "{out}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.lines().next().is_some_and(|l| l.starts_with("✅ database")), "{out}");
    assert!(out.contains("✅ safety: rules and word model (embedding model not fetched"), "{out}");
    assert!(out.contains("✅ email"), "{out}");
    assert!(out.contains("onda is degraded"), "{out}");

    // A database that is not there fails, with a non-zero exit, and nothing is created.
    let broken = match backend {
        Backend::Sqlite => format!("sqlite://{}", cwd.path().join("nowhere/onda.db").display()),
        Backend::Postgres => "postgres://postgres@127.0.0.1:1/nowhere".to_string(),
    };
    let output = run_onda(&["health-check"], &env(broken), cwd.path()).await;
    let out = stdout(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("❌ database"), "{out}");
    assert!(out.contains("onda is unhealthy"), "{out}");
    assert!(!cwd.path().join("nowhere").exists(), "health-check must not create a database");

    // Against the running server.
    let output = run_onda(&["health-check", "--url", &app.address], &env(app.db.url()), cwd.path()).await;
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("✅ database"), "{out}");
    app.ctx.store.close().await;
    let output = run_onda(&["health-check", "--url", &app.address], &env(app.db.url()), cwd.path()).await;
    let out = stdout(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("❌ database: database unreachable"), "{out}");
    let output = run_onda(&["health-check", "--url", "http://127.0.0.1:1"], &[], cwd.path()).await;
    assert!(!output.status.success());
    assert!(stdout(&output).contains("❌ server"), "{}", stdout(&output));
}

// ---------------------------------------------------------------------------------------------------
// HTTP protections. These do not involve storage, so they run on SQLite only.

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("permissions-policy", "microphone=(self), camera=(), geolocation=(), payment=(), usb=()"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'",
    ),
];

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(header(response, name).as_deref(), Some(value), "{name} on {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_every_response() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let api = app.get(&app.client, "/api/health").await;
    assert_security_headers(&api, "an API answer");
    assert_eq!(header(&api, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&api, "strict-transport-security"), None, "no HSTS over plain http");
    let page = app.get(&app.client, "/no-such-page").await;
    assert_eq!(page.status(), 404);
    assert_security_headers(&page, "a 404 page");
    let problem = app.get(&app.client, "/api/me").await;
    assert_security_headers(&problem, "a problem answer");
    assert_eq!(header(&problem, "cache-control").as_deref(), Some("no-store"));
    assert_problem(problem, 401).await;

    let https = TestApp::spawn_with(Backend::Sqlite, &[("NEXTAUTH_URL", "https://onda.example")]).await;
    let response = https.get(&https.client, "/api/health").await;
    let hsts = header(&response, "strict-transport-security").expect("HSTS under https");
    assert!(hsts.starts_with("max-age="), "{hsts}");

    let relaxed = TestApp::spawn_with(Backend::Sqlite, &[("STRICT_SECURITY_HEADERS", "false")]).await;
    let response = relaxed.get(&relaxed.client, "/no-such-page").await;
    let csp = header(&response, "content-security-policy").expect("a CSP still");
    assert!(csp.contains("'unsafe-inline'"), "{csp}");
    // Still no third-party origin anywhere.
    for source in csp.split(';').flat_map(|d| d.split_whitespace().skip(1)) {
        assert!(
            ["'self'", "'none'", "'unsafe-inline'", "data:", "blob:"].contains(&source),
            "{source} in {csp}"
        );
    }

    let off = TestApp::spawn_with(Backend::Sqlite, &[("SECURITY_HEADERS_ENABLED", "false")]).await;
    let response = off.get(&off.client, "/api/health").await;
    assert_eq!(header(&response, "content-security-policy"), None);
    assert_eq!(header(&response, "x-frame-options"), None);
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let credentials = json!({ "email": "csrf@example.com", "password": PASSWORD });
    let response = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("sec-fetch-site", "cross-site")
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    let body = assert_problem(response, 403).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("cross-site"));
    let response = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("origin", "https://evil.example")
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    assert_problem(response, 403).await;

    // The same origin, as a browser sends it, passes.
    let response = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("origin", app.address.as_str())
        .header("sec-fetch-site", "same-origin")
        .json(&credentials)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("origin", app.address.as_str())
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204, "Origin alone, matching Host");
    app.post(&app.client, "/api/auth/login", credentials.clone()).await;

    // A cookie-carrying cross-site write does nothing: the session survives an attempted logout.
    let response = app
        .client
        .post(app.url("/api/auth/logout"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_problem(response, 403).await;
    assert_eq!(app.get(&app.client, "/api/me").await.status(), 200);
    // Reads are not affected.
    let response =
        app.client.get(app.url("/api/me")).header("sec-fetch-site", "cross-site").send().await.expect("sent");
    assert_eq!(response.status(), 200);
}

/// Sends a request by hand with a chunked body (no Content-Length) and returns the status and body.
async fn post_chunked(app: &TestApp, path: &str, body: &[u8]) -> (u16, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    for chunk in body.chunks(8 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and stop reading before the end: that is the point.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_bodies_get_413_problem_json() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let big = json!({ "email": "big@example.com", "password": "x".repeat(100 * 1024) });
    let response = app.post(&app.client, "/api/auth/login", big.clone()).await;
    let body = assert_problem(response, 413).await;
    assert_eq!(body["title"], "Request too large");

    let (status, body) = post_chunked(&app, "/api/auth/login", big.to_string().as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(body.trim()).expect("problem JSON");
    assert_eq!(body["status"], 413);
    // A small chunked body is fine.
    let (status, _) =
        post_chunked(&app, "/api/auth/login", json!({ "email": "a@b.c" }).to_string().as_bytes()).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_logins_are_rate_limited() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let wrong = json!({ "email": "nobody@example.com", "password": "not-the-password" });
    let mut limited = None;
    for attempt in 1..=40 {
        let response = app.post(&app.client, "/api/auth/login", wrong.clone()).await;
        if response.status() == 429 {
            limited = Some((attempt, response));
            break;
        }
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let (attempt, response) = limited.expect("a 429 within 40 attempts");
    assert!(attempt > 10, "the budget allows at least 10 attempts, refused at {attempt}");
    let retry_after: u64 = header(&response, "retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = assert_problem(response, 429).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("try again"));
    // Password reset shares the authentication budget (a token may refill meanwhile: one every 3 s).
    let mut reset_limited = false;
    for _ in 0..3 {
        let response =
            app.post(&app.client, "/api/auth/password-reset", json!({ "email": "x@example.com" })).await;
        if response.status() == 429 {
            reset_limited = true;
            break;
        }
    }
    assert!(reset_limited, "password reset shares the authentication budget");
    // Other endpoints and health are not limited by it.
    assert_eq!(app.get(&app.client, "/api/me").await.status(), 401);
    assert_eq!(app.get(&app.client, "/api/health").await.status(), 200);
    let metrics = app.get(&app.client, "/metrics").await.text().await.expect("metrics");
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("onda_rate_limited_total{scope=\"auth\"} "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no auth rate-limit counter in {metrics}"));
    assert!(refused >= 2, "{refused}");

    let unlimited = TestApp::spawn_with(Backend::Sqlite, &[("RATE_LIMIT_ENABLED", "false")]).await;
    for attempt in 1..=30 {
        let response = unlimited.post(&unlimited.client, "/api/auth/login", wrong.clone()).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.get(&app.client, "/api/health/database").await;
    app.get(&app.client, "/api/health/email").await;
    app.get(&app.client, "/api/no-such-thing/1234").await;
    let response = app.get(&app.client, "/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = response.text().await.expect("metrics");
    assert!(
        text.contains(
            "onda_http_requests_total{method=\"GET\",route=\"/api/health/{part}\",status=\"2xx\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\",status=\"4xx\"} 1"), "{text}");
    assert!(!text.contains("no-such-thing"), "raw paths must not become labels");
    assert!(text.contains(
        "onda_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/health/{part}\",le=\"+Inf\"} 2"
    ));
    assert!(text.contains("onda_build_info{version=\""), "{text}");
    assert!(text.contains("backend=\"sqlite\"} 1"), "{text}");
    assert!(text.contains("onda_jobs_pending 0"), "{text}");
    assert!(text.contains("onda_database_up 1"), "{text}");

    // Loopback only without a token: a request relayed by a proxy is not local.
    let proxied = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .expect("sent");
    assert_problem(proxied, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_when_one_is_set() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("ONDA_METRICS_TOKEN", "scrape-token-1")]).await;
    assert_problem(app.get(&app.client, "/metrics").await, 404).await;
    let wrong = app.client.get(app.url("/metrics")).bearer_auth("scrape-token-2").send().await.expect("sent");
    assert_problem(wrong, 404).await;
    let right = app.client.get(app.url("/metrics")).bearer_auth("scrape-token-1").send().await.expect("sent");
    assert_eq!(right.status(), 200);
    assert!(right.text().await.expect("metrics").contains("onda_http_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_their_own_listener() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("address").port()
    };
    let bind = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("ONDA_METRICS_BIND", bind.as_str()), ("ONDA_METRICS_TOKEN", "scrape-token")],
    )
    .await;
    app.get(&app.client, "/api/health").await;
    let client = TestApp::new_client();
    let response = client.get(format!("http://{bind}/metrics")).send().await.expect("sent");
    assert_eq!(response.status(), 200, "no token on the separate listener");
    let text = response.text().await.expect("metrics");
    assert!(text.contains("route=\"/api/health\""), "{text}");
    assert_eq!(client.get(format!("http://{bind}/api/health")).send().await.expect("sent").status(), 404);
    // The main listener still wants the token.
    assert_problem(app.get(&app.client, "/metrics").await, 404).await;

    // Both listeners stop with the server.
    app.stop().await;
    assert!(client.get(format!("http://{bind}/metrics")).send().await.is_err());
}
