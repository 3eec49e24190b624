//! Health of each subsystem, shared by `GET /api/health` and `onda health-check`.
//!
//! The report has the shape of the original operations guide:
//! `{"status": "healthy|degraded|unhealthy", "timestamp", "checks": {name: {"healthy", "responseTime", ..}}}`.
//! Only the database is critical: when it fails the whole service is unhealthy. Any other failing part
//! makes it degraded. A part that is not built yet says so and reports what is configured, never a
//! secret. Error causes go to the log; the report carries only a fixed, safe sentence.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{Config, ProviderName};
use crate::providers::chat::anthropic::AnthropicSettings;
use crate::providers::chat::openai::OpenAiSettings;
use crate::providers::email::Mailer;
use crate::storage::{Pool, Store};

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }
}

/// The subsystems a report can cover, in the order they are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Database,
    Safety,
    Ai,
    Voice,
    Email,
}

impl Part {
    pub const ALL: [Part; 5] = [Part::Database, Part::Safety, Part::Ai, Part::Voice, Part::Email];

    pub fn name(self) -> &'static str {
        match self {
            Part::Database => "database",
            Part::Safety => "safety",
            Part::Ai => "ai",
            Part::Voice => "voice",
            Part::Email => "email",
        }
    }

    pub fn parse(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }

    /// A critical part that fails makes the whole service unhealthy.
    pub fn is_critical(self) -> bool {
        matches!(self, Part::Database)
    }
}

/// One subsystem's result.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub healthy: bool,
    /// Milliseconds the check took.
    #[serde(rename = "responseTime")]
    pub response_time: f64,
    pub critical: bool,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl Check {
    fn new(part: Part, healthy: bool, started: Instant, details: Value) -> Self {
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        Self {
            healthy,
            response_time: (elapsed * 1000.0).round() / 1000.0,
            critical: part.is_critical(),
            details: match details {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    /// A failed check with a message fit to show anyone (never an internal error text).
    pub fn failed(part: Part, started: Instant, message: &str) -> Self {
        Self::new(part, false, started, json!({ "error": message }))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub status: Status,
    pub timestamp: String,
    pub version: &'static str,
    pub checks: BTreeMap<&'static str, Check>,
}

impl Report {
    pub fn new(now_ms: i64, checks: Vec<(Part, Check)>) -> Self {
        let status = checks
            .iter()
            .map(|(part, check)| match (check.healthy, part.is_critical()) {
                (true, _) => Status::Healthy,
                (false, false) => Status::Degraded,
                (false, true) => Status::Unhealthy,
            })
            .max()
            .unwrap_or(Status::Healthy);
        Self {
            status,
            timestamp: crate::clock::rfc3339(now_ms),
            version: env!("CARGO_PKG_VERSION"),
            checks: checks.into_iter().map(|(part, check)| (part.name(), check)).collect(),
        }
    }
}

/// What the checks look at.
#[derive(Clone, Copy)]
pub struct Subsystems<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub mailer: &'a dyn Mailer,
    /// The safety engine, or why it could not be built.
    pub safety: Result<&'a onda_safety::Engine, &'a str>,
}

impl<'a> Subsystems<'a> {
    pub fn of(ctx: &'a super::Context) -> Self {
        Self {
            config: &ctx.config,
            store: &ctx.store,
            mailer: ctx.mailer.as_ref(),
            safety: Ok(ctx.safety.as_ref()),
        }
    }

    pub async fn check(&self, part: Part) -> Check {
        match part {
            Part::Database => check_database(self.store).await,
            Part::Safety => check_safety(self.config, self.safety),
            Part::Ai => check_ai(self.config),
            Part::Voice => check_voice(self.config),
            Part::Email => check_email(self.mailer).await,
        }
    }

    pub async fn report(&self, parts: &[Part], now_ms: i64) -> Report {
        let checks = futures::future::join_all(parts.iter().map(|part| async move {
            let check = self.check(*part).await;
            (*part, check)
        }))
        .await;
        Report::new(now_ms, checks)
    }
}

/// The migrations this build knows, and which of them a database has applied.
#[derive(Clone, Debug, Default)]
pub struct MigrationState {
    pub applied: Vec<(i64, String)>,
    /// Known to this build but not applied yet.
    pub pending: Vec<(i64, String)>,
    /// Applied, but unknown to this build: the database was migrated by a newer Onda.
    pub unknown: Vec<i64>,
}

/// The migrations embedded in this build for a backend (`"sqlite"` or `"postgres"`; up migrations only).
pub fn known_migrations(backend: &str) -> Vec<(i64, String)> {
    let migrator = if backend == "sqlite" {
        sqlx::migrate!("./migrations/sqlite")
    } else {
        sqlx::migrate!("./migrations/postgres")
    };
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.description.to_string()))
        .collect()
}

/// Reads `_sqlx_migrations`; `Ok(None)` when the table does not exist (the database was never migrated).
pub async fn migration_state(store: &Store) -> Result<Option<MigrationState>, sqlx::Error> {
    let exists: bool = match store.pool() {
        Pool::Sqlite(pool) => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(pool)
            .await?
                > 0
        }
        Pool::Postgres(pool) => {
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(pool).await?
        }
    };
    if !exists {
        return Ok(None);
    }
    let sql = "SELECT version, description FROM _sqlx_migrations WHERE success = TRUE ORDER BY version";
    let applied: Vec<(i64, String)> = crate::storage::with_pool!(store, pool => {
        sqlx::query_as(sql).fetch_all(pool).await?
    });
    let known = known_migrations(store.backend_name());
    let pending = known.iter().filter(|(v, _)| !applied.iter().any(|(a, _)| a == v)).cloned().collect();
    let unknown =
        applied.iter().filter(|(v, _)| !known.iter().any(|(k, _)| k == v)).map(|(v, _)| *v).collect();
    Ok(Some(MigrationState { applied, pending, unknown }))
}

/// A round trip to the database and a look at its schema version.
pub async fn check_database(store: &Store) -> Check {
    let part = Part::Database;
    let started = Instant::now();
    let backend = store.backend_name();
    let probe = async {
        store.ping().await.map_err(anyhow::Error::from)?;
        migration_state(store).await.map_err(anyhow::Error::from)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Err(_) => {
            tracing::warn!(backend, "database health check timed out");
            Check::new(
                part,
                false,
                started,
                json!({ "backend": backend, "error": "database did not answer in time" }),
            )
        }
        Ok(Err(err)) => {
            tracing::warn!(backend, error = %err, "database health check failed");
            Check::new(part, false, started, json!({ "backend": backend, "error": "database unreachable" }))
        }
        Ok(Ok(None)) => Check::new(
            part,
            false,
            started,
            json!({ "backend": backend, "error": "the database has no Onda schema: run `onda migrate`" }),
        ),
        Ok(Ok(Some(state))) if !state.unknown.is_empty() => Check::new(
            part,
            false,
            started,
            json!({
                "backend": backend,
                "error": "the database was migrated by a newer version of Onda",
                "migrations": { "applied": state.applied.len(), "unknown": state.unknown },
            }),
        ),
        Ok(Ok(Some(state))) => Check::new(
            part,
            true,
            started,
            json!({
                "backend": backend,
                "migrations": {
                    "applied": state.applied.len(),
                    "latest": state.applied.last().map(|(v, _)| *v),
                    "pending": state.pending.len(),
                },
            }),
        ),
    }
}

/// Messages the safety engine must rate as expected, checked on every health check: a crisis phrase in
/// children's spelling must reach the crisis level, and ordinary kid chat with a homonym must stay safe.
const SAFETY_CANARIES: [(&str, u8, u8); 2] =
    [("i wnt to k1ll my self", 4, 4), ("I killed it on my spelling test!", 0, 1)];

/// The safety engine: its layers, and whether it still rates the canary messages as expected.
pub fn check_safety(config: &Config, engine: Result<&onda_safety::Engine, &str>) -> Check {
    let started = Instant::now();
    let configured = json!({
        "layerRedundancy": config.safety_layer_redundancy,
        "humanModerationRequired": config.human_moderation_required,
        "escalationTimeoutSeconds": config.escalation_timeout_seconds,
        "alertWebhook": config.safety_alert_webhook.is_some(),
        "parentNotifications": config.parent_notifications_enabled,
        "testMode": config.safety_test_mode,
    });
    let engine = match engine {
        Ok(engine) => engine,
        Err(reason) => {
            return Check::new(
                Part::Safety,
                false,
                started,
                json!({ "status": "unavailable", "error": reason, "configured": configured }),
            );
        }
    };
    let failed = SAFETY_CANARIES
        .iter()
        .filter(|(text, low, high)| {
            let level = engine.assess(text, &onda_safety::Context::child()).level;
            level < *low || level > *high
        })
        .count();
    let healthy = failed == 0;
    Check::new(
        Part::Safety,
        healthy,
        started,
        json!({
            "status": if healthy { "ok" } else { "canary_failed" },
            "layers": {
                "rules": true,
                "lexicalModel": engine.has_lexical_model(),
                "embeddingModel": engine.has_learned_scorer(),
            },
            "canariesFailed": failed,
            "configured": configured,
        }),
    )
}

/// Which model providers are configured, in the order they would be tried. Keys are only "set" or not.
pub fn check_ai(config: &Config) -> Check {
    let started = Instant::now();
    let local = local_model_file(config);
    // The same rules the provider router uses to decide which providers exist.
    let configured = |p: ProviderName| match p {
        ProviderName::Openai => OpenAiSettings::from_config(config, Duration::ZERO).is_some(),
        ProviderName::Anthropic => AnthropicSettings::from_config(config, Duration::ZERO).is_some(),
        ProviderName::Local => local.is_some(),
    };
    let mut order: Vec<ProviderName> = Vec::new();
    if let Some(preferred) = config.ai_provider_preference {
        order.push(preferred);
    }
    for p in [ProviderName::Openai, ProviderName::Anthropic, ProviderName::Local] {
        if !order.contains(&p) && (configured(p) || p == ProviderName::Local) {
            order.push(p);
        }
    }
    // Healthy when some provider can answer a child: the local model is there, or a cloud provider is
    // configured (used only for families with cloud-AI consent).
    let any =
        [ProviderName::Openai, ProviderName::Anthropic, ProviderName::Local].into_iter().any(configured);
    let (status, message) = if local.is_some() {
        ("ready", "the embedded local model answers every family")
    } else if any {
        (
            "cloud_only",
            "no local model: only families with cloud-AI consent get replies (run `onda models fetch`)",
        )
    } else {
        ("no_model", "no chat model: run `onda models fetch` or set a provider key")
    };
    Check::new(
        Part::Ai,
        any,
        started,
        json!({
            "status": status,
            "message": message,
            "configured": {
                "openai": {
                    "apiKey": config.openai_api_key.is_some(),
                    "customBaseUrl": config.openai_base_url.is_some(),
                },
                "anthropic": { "apiKey": config.anthropic_api_key.is_some() },
                "local": {
                    "modelPresent": local.is_some(),
                    "model": local,
                },
                "order": order,
            },
        }),
    )
}

/// The file name (never the full path) of the local chat model, when one is present: `ONDA_LOCAL_MODEL`
/// (absolute, or relative to the models folder), else any `.gguf` file in `ONDA_MODELS_DIR`.
fn local_model_file(config: &Config) -> Option<String> {
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
    if let Some(model) = &config.local_model {
        let candidates = [model.clone(), config.models_dir.join(model)];
        return candidates.iter().find(|p| p.is_file()).and_then(|p| file_name(p));
    }
    let mut found: Vec<String> = std::fs::read_dir(&config.models_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("gguf")))
        .filter_map(|p| file_name(&p))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Text-to-speech: Cartesia when its key is set, else local synthesis. Not built yet.
pub fn check_voice(config: &Config) -> Check {
    let started = Instant::now();
    let voices: Map<String, Value> = ["raccoon", "jellyfish", "robot"]
        .into_iter()
        .map(|persona| (persona.to_string(), Value::Bool(config.cartesia_voice_ids.contains_key(persona))))
        .collect();
    Check::new(
        Part::Voice,
        false,
        started,
        json!({
            "status": "not_built",
            "message": "speech is not built yet",
            "configured": {
                "provider": if config.cartesia_api_key.is_some() { "cartesia" } else { "local" },
                "cartesiaApiKey": config.cartesia_api_key.is_some(),
                "cartesiaVoices": voices,
                "voiceInput": config.enable_voice_input,
            },
        }),
    )
}

/// Whether the mailer can deliver now.
pub async fn check_email(mailer: &dyn Mailer) -> Check {
    let part = Part::Email;
    let started = Instant::now();
    let mailer_name = mailer.describe();
    match tokio::time::timeout(CHECK_TIMEOUT, mailer.check()).await {
        Ok(Ok(())) => Check::new(part, true, started, json!({ "mailer": mailer_name })),
        Ok(Err(err)) => {
            tracing::warn!(error = %format!("{err:#}"), "email health check failed");
            Check::new(
                part,
                false,
                started,
                json!({ "mailer": mailer_name, "error": "the mailer cannot deliver" }),
            )
        }
        Err(_) => Check::new(
            part,
            false,
            started,
            json!({ "mailer": mailer_name, "error": "the mailer did not answer in time" }),
        ),
    }
}

/// "sqlite, 2 migrations" / "not built yet" / the error: one short phrase from a check's JSON, so the
/// CLI prints the same words for an in-process check and for a remote server's answer.
pub fn summary_of(check: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(error) = check.get("error").and_then(Value::as_str) {
        parts.push(error.to_string());
    }
    if check.get("status").and_then(Value::as_str) == Some("not_built") {
        parts.push("not built yet".into());
    }
    if let Some(backend) = check.get("backend").and_then(Value::as_str) {
        parts.push(backend.to_string());
    }
    if let Some(layers) = check.get("layers") {
        let on = |name: &str| layers.get(name).and_then(Value::as_bool).unwrap_or(false);
        parts.push(match (on("lexicalModel"), on("embeddingModel")) {
            (_, true) => "rules, word model and embeddings".to_string(),
            (true, false) => {
                "rules and word model (embedding model not fetched: `onda models fetch`)".to_string()
            }
            (false, false) => "rules only".to_string(),
        });
    }
    if let Some(failed) = check.get("canariesFailed").and_then(Value::as_u64).filter(|n| *n > 0) {
        parts.push(format!("{failed} canary message(s) rated wrongly"));
    }
    if let Some(pending) = check.pointer("/migrations/pending").and_then(Value::as_u64).filter(|n| *n > 0) {
        parts.push(format!(
            "{pending} migration(s) pending: the server applies them at start, or run `onda migrate`"
        ));
    }
    if let Some(mailer) = check.get("mailer").and_then(Value::as_str) {
        parts.push(mailer.to_string());
    }
    if let Some(configured) = check.get("configured") {
        if let Some(provider) = configured.get("provider").and_then(Value::as_str) {
            parts.push(format!("provider {provider}"));
        }
        if let Some(order) = configured.get("order").and_then(Value::as_array) {
            let names: Vec<&str> = order.iter().filter_map(Value::as_str).collect();
            parts.push(format!("providers {}", names.join(" > ")));
        }
        if let Some(redundancy) = configured.get("layerRedundancy").and_then(Value::as_bool) {
            parts.push(format!("layer redundancy {}", if redundancy { "on" } else { "off" }));
        }
    }
    if let Some(ms) = check.get("responseTime").and_then(Value::as_f64) {
        parts.push(format!("{ms:.1} ms"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(healthy: bool) -> Check {
        Check { healthy, response_time: 0.0, critical: false, details: Map::new() }
    }

    #[test]
    fn only_a_critical_failure_is_unhealthy() {
        let r = Report::new(0, vec![(Part::Database, check(true)), (Part::Email, check(true))]);
        assert_eq!(r.status, Status::Healthy);
        let r = Report::new(0, vec![(Part::Database, check(true)), (Part::Safety, check(false))]);
        assert_eq!(r.status, Status::Degraded);
        let r = Report::new(0, vec![(Part::Database, check(false)), (Part::Safety, check(false))]);
        assert_eq!(r.status, Status::Unhealthy);
        assert_eq!(r.timestamp, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn configuration_reports_never_show_secrets() {
        let config = Config::from_vars(
            [
                ("OPENAI_API_KEY", "sk-very-secret"),
                ("ANTHROPIC_API_KEY", "sk-ant-secret"),
                ("CARTESIA_API_KEY", "cartesia-secret"),
                ("CARTESIA_VOICE_ID_ROBOT", "voice-1"),
                ("SAFETY_ALERT_WEBHOOK", "https://hooks.example/secret-path"),
                ("OPENAI_BASE_URL", "http://user:pw-secret@127.0.0.1:11434/v1"),
                ("ONDA_MODELS_DIR", "/nonexistent/onda-models"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .expect("valid");
        let all = serde_json::to_string(&[
            check_safety(&config, Err("not built")),
            check_ai(&config),
            check_voice(&config),
        ])
        .expect("json");
        for secret in
            ["sk-very-secret", "sk-ant-secret", "cartesia-secret", "secret-path", "pw-secret", "voice-1"]
        {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        let ai = serde_json::to_value(check_ai(&config)).expect("json");
        assert_eq!(ai["configured"]["openai"]["apiKey"], true);
        assert_eq!(ai["configured"]["local"]["modelPresent"], false);
        assert_eq!(ai["configured"]["order"], json!(["openai", "anthropic", "local"]));
        let voice = serde_json::to_value(check_voice(&config)).expect("json");
        assert_eq!(voice["configured"]["provider"], "cartesia");
        assert_eq!(voice["configured"]["cartesiaVoices"]["robot"], true);
    }

    #[test]
    fn a_local_model_in_the_models_folder_is_found() {
        let dir = std::env::temp_dir().join(format!("onda-models-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("small-chat.Q4.gguf"), b"x").expect("write");
        let config = Config::from_vars(
            [("ONDA_MODELS_DIR", dir.display().to_string()), ("AI_PROVIDER_PREFERENCE", "local".into())]
                .map(|(k, v)| (k.to_string(), v)),
        )
        .expect("valid");
        let ai = serde_json::to_value(check_ai(&config)).expect("json");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ai["configured"]["local"]["modelPresent"], true);
        assert_eq!(ai["configured"]["local"]["model"], "small-chat.Q4.gguf");
        assert_eq!(ai["configured"]["order"], json!(["local"]));
    }
}
