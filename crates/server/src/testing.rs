//! Test support (no part of a running Onda uses it), shared by the API tests (`tests/api`) and the chat
//! benchmark (`benches/chat.rs`):
//!
//! - [`TestApp`]: the real server on `127.0.0.1:0` with its own data directory, database and clock, and
//!   the HTTP steps that set a family up (sign-up with the emailed link, consent, PIN, a child, kid mode).
//! - [`SseReader`]: reads the `text/event-stream` answer of `POST /api/chat` one event at a time.
//!
//! Helpers panic with a message on anything unexpected: they are for tests and benchmarks.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::ManualClock;
use crate::domain::conversation::ReplySource;
use crate::storage::DatabaseLocation;
use crate::storage::testing::{Backend, TempDir, TestDatabase};
use crate::{Config, Context};

/// The password of every parent a [`TestApp`] signs up.
pub const PASSWORD: &str = "a-long-enough-password";
/// The PIN [`TestApp::ready_family`] sets.
pub const PIN: &str = "2468";
/// Where a [`TestApp`]'s manual clock starts (September 2026).
pub const MANUAL_CLOCK_START_MS: i64 = 1_790_000_000_000;

/// Which clock a [`TestApp`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestClock {
    /// [`TestApp::clock`]: time stands still until a test moves it.
    Manual,
    /// The system clock, as in production (benchmarks); moving [`TestApp::clock`] then does nothing.
    System,
}

pub struct TestApp {
    pub address: String,
    pub ctx: Context,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _data: TempDir,
    pub db: TestDatabase,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts with extra configuration variables (for example `("RATE_LIMIT_ENABLED", "false")`).
    pub async fn spawn_with(backend: Backend, vars: &[(&str, &str)]) -> Self {
        Self::spawn_with_replies(backend, vars, None).await
    }

    /// Starts with extra configuration and this source of the buddy's replies (a scripted fake model);
    /// `None` keeps the provider router the configuration builds.
    pub async fn spawn_with_replies(
        backend: Backend,
        vars: &[(&str, &str)],
        replies: Option<Arc<dyn ReplySource>>,
    ) -> Self {
        Self::launch(TestDatabase::new(backend).await, vars, replies, TestClock::Manual).await
    }

    /// Starts on this database with extra configuration, a source of replies (`None`: the provider
    /// router the configuration builds) and a clock. Everything else is as `onda serve` builds it
    /// ([`Context::open`]); the models folder is an empty one, so no local model loads.
    pub async fn launch(
        db: TestDatabase,
        vars: &[(&str, &str)],
        replies: Option<Arc<dyn ReplySource>>,
        clock: TestClock,
    ) -> Self {
        let data = TempDir::new().expect("temporary data directory");
        let mut all: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), db.url()),
            ("ONDA_DATA_DIR".into(), data.path().display().to_string()),
            ("ONDA_MODELS_DIR".into(), data.path().join("models").display().to_string()),
        ];
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_vars(all).expect("test configuration is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let bound = listener.local_addr().expect("local address");
        let mut ctx = Context::open(Arc::new(config), bound).await.expect("context opens");
        let manual = ManualClock::new(MANUAL_CLOCK_START_MS);
        if clock == TestClock::Manual {
            ctx.clock = manual.clone();
        }
        if replies.is_some() {
            ctx.replies = replies;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_ctx = ctx.clone();
        let server = tokio::spawn(async move {
            crate::serve(server_ctx, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        let backend = match db.location {
            DatabaseLocation::Sqlite(_) => Backend::Sqlite,
            DatabaseLocation::Postgres(_) => Backend::Postgres,
        };
        Self {
            address: format!("http://{bound}"),
            ctx,
            clock: manual,
            client: Self::new_client(),
            data_dir: data.path().to_path_buf(),
            backend,
            shutdown: Some(tx),
            server: Some(server),
            _data: data,
            db,
        }
    }

    /// A client with its own cookie jar: another browser.
    pub fn new_client() -> reqwest::Client {
        Self::client_builder().build().expect("http client")
    }

    /// How [`TestApp::new_client`] builds its client, to add to (for example a local address).
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, client: &reqwest::Client, path: &str, body: Value) -> reqwest::Response {
        client.post(self.url(path)).json(&body).send().await.expect("request sent")
    }

    pub async fn put(&self, client: &reqwest::Client, path: &str, body: Value) -> reqwest::Response {
        client.put(self.url(path)).json(&body).send().await.expect("request sent")
    }

    pub async fn get(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn delete(&self, client: &reqwest::Client, path: &str) -> reqwest::Response {
        client.delete(self.url(path)).send().await.expect("request sent")
    }

    /// Signs up a parent with this client and returns the account JSON.
    pub async fn sign_up(&self, client: &reqwest::Client, email: &str) -> Value {
        let response =
            self.post(client, "/api/auth/signup", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), 201, "sign-up of {email}");
        response.json().await.expect("account JSON")
    }

    /// Signs up and verifies the email by following the emailed link.
    pub async fn sign_up_verified(&self, client: &reqwest::Client, email: &str) -> Value {
        let account = self.sign_up(client, email).await;
        let token = self.token_from_email(email, "/verify-email?token=");
        let response = self.post(client, "/api/auth/verify-email", json!({ "token": token })).await;
        assert_eq!(response.status(), 200, "verifying {email}");
        account
    }

    /// Gives the current consent (with or without cloud AI) and returns the consent status JSON.
    pub async fn give_consent(&self, client: &reqwest::Client, cloud_ai: bool) -> Value {
        let response = self.post(client, "/api/consent", consent_body(cloud_ai)).await;
        assert_eq!(response.status(), 200, "giving consent");
        response.json().await.expect("consent JSON")
    }

    pub async fn set_pin(&self, client: &reqwest::Client, pin: &str) {
        let response = self.put(client, "/api/pin", json!({ "pin": pin })).await;
        assert_eq!(response.status(), 204, "setting the PIN");
    }

    /// Adds a child to the signed-in parent's family and returns the child's id.
    pub async fn add_child(&self, client: &reqwest::Client, name: &str, age: i64, persona: &str) -> String {
        let response = self
            .post(client, "/api/children", json!({ "displayName": name, "age": age, "persona": persona }))
            .await;
        assert_eq!(response.status(), 201, "adding a child");
        let child: Value = response.json().await.expect("child JSON");
        child["id"].as_str().expect("child id").to_string()
    }

    /// A verified parent signed in on `client`, with consent (cloud AI as asked), PIN [`PIN`] and one
    /// child, Mia (7, raccoon); returns the child's id.
    pub async fn ready_family(&self, client: &reqwest::Client, email: &str, cloud_ai: bool) -> String {
        self.sign_up_verified(client, email).await;
        self.give_consent(client, cloud_ai).await;
        self.set_pin(client, PIN).await;
        self.add_child(client, "Mia", 7, "raccoon").await
    }

    /// Signs `kid` (another browser) in as the parent `email` and puts it in kid mode for this child,
    /// as a parent handing a tablet to a child does.
    pub async fn start_kid_session(&self, kid: &reqwest::Client, email: &str, child_id: &str) {
        let login = self.post(kid, "/api/auth/login", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(login.status(), 200, "signing in {email}");
        let entered = self.post(kid, &format!("/api/children/{child_id}/session"), json!({})).await;
        assert_eq!(entered.status(), 200, "entering kid mode");
    }

    /// Every message in the outbox, decoded enough to read links, oldest first.
    pub fn outbox(&self) -> Vec<String> {
        let dir = self.data_dir.join("outbox");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), p))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| {
                let raw = std::fs::read_to_string(p).expect("readable email");
                // Undo quoted-printable soft line breaks and escaped equals signs.
                raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
            })
            .collect()
    }

    /// The newest outbox messages addressed to `to`.
    pub fn emails_to(&self, to: &str) -> Vec<String> {
        self.outbox().into_iter().filter(|m| m.contains(&format!("To: {to}"))).collect()
    }

    /// The token of the newest link to `to` that starts with `prefix` (such as `/verify-email?token=`).
    pub fn token_from_email(&self, to: &str, prefix: &str) -> String {
        let emails = self.emails_to(to);
        let email = emails
            .iter()
            .rev()
            .find(|m| m.contains(prefix))
            .unwrap_or_else(|| panic!("no email to {to} with a {prefix} link"));
        let start = email.find(prefix).expect("prefix") + prefix.len();
        email[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The body of `POST /api/consent` for the current policy versions.
pub fn consent_body(cloud_ai: bool) -> Value {
    json!({ "privacyPolicyVersion": "2.0", "termsVersion": "2.0", "cloudAi": cloud_ai })
}

/// Asserts a response is problem JSON with this status and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(content_type, "application/problem+json");
    let header_id =
        response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string());
    assert!(!header_id.is_empty(), "x-request-id header");
    assert_eq!(body["requestId"], header_id.as_str());
    body
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: Value,
}

/// Reads server-sent events from a streaming response, one at a time.
pub struct SseReader {
    response: reqwest::Response,
    /// Bytes received and not yet read as events (a chunk may end inside a character).
    buffer: Vec<u8>,
}

impl SseReader {
    /// Asserts the response is a 200 event stream.
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "chat answers 200");
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { response, buffer: Vec::new() }
    }

    /// The next event; `None` when the stream has ended.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = std::str::from_utf8(&block).expect("UTF-8");
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(Sse { event, data: serde_json::from_str(&data).expect("event data is JSON") });
            }
            let chunk = self.response.chunk().await.expect("stream readable")?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Every remaining event.
    pub async fn all(mut self) -> Vec<Sse> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}
