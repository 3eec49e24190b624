//! `TestApp`: a running Onda on 127.0.0.1:0 with its own data directory, database and clock.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use onda::clock::ManualClock;
use onda::storage::testing::{Backend, TestDatabase};
use onda::{Config, Context};
use serde_json::Value;

/// Expands each named `async fn name(backend: Backend)` into a SQLite and a PostgreSQL test.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(onda::storage::testing::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(onda::storage::testing::Backend::Postgres).await;
                }
            }
        )*
    };
}

pub const PASSWORD: &str = "a-long-enough-password";

pub struct TestApp {
    pub address: String,
    pub ctx: Context,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub backend: Backend,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
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
        replies: Option<Arc<dyn onda::domain::conversation::ReplySource>>,
    ) -> Self {
        let db = TestDatabase::new(backend).await;
        let data = tempfile::tempdir().expect("temporary data directory");
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
        let clock = ManualClock::new(1_790_000_000_000);
        ctx.clock = clock.clone();
        if replies.is_some() {
            ctx.replies = replies;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server_ctx = ctx.clone();
        let server = tokio::spawn(async move {
            onda::serve(server_ctx, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            address: format!("http://{bound}"),
            ctx,
            clock,
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
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client")
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
        let response = self
            .post(client, "/api/auth/signup", serde_json::json!({ "email": email, "password": PASSWORD }))
            .await;
        assert_eq!(response.status(), 201, "sign-up of {email}");
        response.json().await.expect("account JSON")
    }

    /// Signs up and verifies the email by following the emailed link.
    pub async fn sign_up_verified(&self, client: &reqwest::Client, email: &str) -> Value {
        let account = self.sign_up(client, email).await;
        let token = self.token_from_email(email, "/verify-email?token=");
        let response =
            self.post(client, "/api/auth/verify-email", serde_json::json!({ "token": token })).await;
        assert_eq!(response.status(), 200, "verifying {email}");
        account
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
