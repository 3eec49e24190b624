//! One typed configuration, read from the environment (and a `.env` file) with the variable names of
//! the original operations guide. Defaults < `.env` < environment < command-line flags.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A value that must never reach a log line or `config show`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {variable} = {value:?} is not valid: {hint}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub hint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Openai,
    Anthropic,
    Local,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    /// `None` means the SQLite file in the data directory.
    pub database_url: Option<Secret>,
    pub public_url: Option<url::Url>,
    pub log_level: String,
    pub log_format: LogFormat,

    pub openai_api_key: Option<Secret>,
    pub openai_base_url: Option<url::Url>,
    /// The model asked of OpenAI (or of the OpenAI-compatible server at `openai_base_url`).
    pub openai_model: String,
    pub anthropic_api_key: Option<Secret>,
    /// Another server speaking Anthropic's Messages API (tests, proxies).
    pub anthropic_base_url: Option<url::Url>,
    pub anthropic_model: String,
    pub ai_provider_preference: Option<ProviderName>,
    pub local_model: Option<PathBuf>,

    pub cartesia_api_key: Option<Secret>,
    pub cartesia_voice_ids: BTreeMap<&'static str, String>,

    pub resend_api_key: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub parent_alert_from_email: String,
    pub weekly_summary_from_email: String,

    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    pub google_redirect_uri: Option<String>,

    pub encryption_key: Option<Secret>,
    pub sentry_dsn: Option<Secret>,
    pub safety_alert_webhook: Option<Secret>,

    pub rate_limit_enabled: bool,
    pub security_headers_enabled: bool,
    pub strict_security_headers: bool,

    pub enable_voice_input: bool,
    pub enable_parent_dashboard: bool,
    pub enable_whisper_mode: bool,
    pub enable_organic_nudging: bool,
    pub enable_calendar_integration: bool,

    pub privacy_policy_version: String,
    pub terms_of_service_version: String,
    pub default_data_retention_days: u32,
    pub parent_consent_required: bool,
    pub human_moderation_required: bool,
    pub escalation_timeout_seconds: u64,
    pub max_child_session_minutes: u32,
    pub safety_layer_redundancy: bool,
    pub parent_notifications_enabled: bool,
    pub safety_test_mode: bool,
    pub mock_external_services: bool,
    pub data_export_enabled: bool,
    pub privacy_audit_enabled: bool,

    /// Bearer token that opens `/metrics` on the main listener. Without it, `/metrics` answers only
    /// clients on the loopback interface.
    pub metrics_token: Option<Secret>,
    /// A second listener that serves only `/metrics`, without a token (for a private network or a
    /// sidecar scraper).
    pub metrics_bind: Option<SocketAddr>,
    /// How long the "email plus" confirmation waits after consent before it is sent.
    pub consent_confirmation_delay_seconds: u64,
    /// Warnings found while reading (unknown `ONDA_*` variables and the like), logged at start-up.
    pub warnings: Vec<String>,
}

/// The model asked of OpenAI when `ONDA_OPENAI_MODEL` is unset.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// The model asked of Anthropic when `ONDA_ANTHROPIC_MODEL` is unset.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-3-5-haiku-latest";

/// Every variable this configuration understands; used to warn about unknown `ONDA_*` names.
pub const KNOWN_ONDA_VARIABLES: &[&str] = &[
    "ONDA_BIND",
    "ONDA_DATA_DIR",
    "ONDA_MODELS_DIR",
    "ONDA_PYPI_INDEX_URL",
    "ONDA_LOCAL_MODEL",
    "ONDA_OPENAI_MODEL",
    "ONDA_ANTHROPIC_MODEL",
    "ONDA_ANTHROPIC_BASE_URL",
    "ONDA_LOG_FORMAT",
    "ONDA_METRICS_TOKEN",
    "ONDA_METRICS_BIND",
    "ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS",
    "ONDA_ADMIN_PASSWORD",
    "ONDA_TEST_DATABASE_URL",
    "ONDA_BENCH_DATABASE_URL",
];

impl Config {
    /// Reads the process environment (after loading `.env` from the working directory, which never
    /// overrides a variable already set).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from any set of variables; tests use this instead of the process environment.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let reader = Reader { vars: &vars };
        let mut warnings = Vec::new();
        for name in vars.keys().filter(|k| k.starts_with("ONDA_")) {
            if !KNOWN_ONDA_VARIABLES.contains(&name.as_str()) {
                warnings.push(format!("unknown variable {name} is ignored"));
            }
        }

        let bind = reader.parse("ONDA_BIND", "127.0.0.1:3000", "an address such as 127.0.0.1:3000")?;
        let data_dir = PathBuf::from(reader.get("ONDA_DATA_DIR").unwrap_or("./data"));
        let models_dir = match reader.get("ONDA_MODELS_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => default_models_dir(&vars),
        };
        let database_url = match reader.get("DATABASE_URL") {
            None => None,
            Some(url) => {
                crate::storage::DatabaseLocation::parse(url).map_err(|hint| ConfigError {
                    variable: "DATABASE_URL",
                    value: redact_url(url),
                    hint,
                })?;
                Some(Secret::new(url))
            }
        };
        let public_url = reader.url("NEXTAUTH_URL")?;
        let log_level = reader.get("LOG_LEVEL").unwrap_or("info").to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            return Err(reader.invalid("LOG_LEVEL", "one of error, warn, info, debug"));
        }
        let log_format = match reader.get("ONDA_LOG_FORMAT").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(reader.invalid("ONDA_LOG_FORMAT", "text or json")),
        };
        let ai_provider_preference = match reader.get("AI_PROVIDER_PREFERENCE") {
            None => None,
            Some(v) => Some(match v.to_ascii_lowercase().as_str() {
                "openai" => ProviderName::Openai,
                "anthropic" => ProviderName::Anthropic,
                "local" => ProviderName::Local,
                _ => {
                    return Err(reader.invalid("AI_PROVIDER_PREFERENCE", "openai, anthropic or local"));
                }
            }),
        };
        let mut cartesia_voice_ids = BTreeMap::new();
        for (persona, var) in [
            ("raccoon", "CARTESIA_VOICE_ID_RACCOON"),
            ("jellyfish", "CARTESIA_VOICE_ID_JELLYFISH"),
            ("robot", "CARTESIA_VOICE_ID_ROBOT"),
        ] {
            if let Some(id) = reader.get(var) {
                cartesia_voice_ids.insert(persona, id.to_string());
            }
        }

        let config = Config {
            bind,
            data_dir,
            models_dir,
            database_url,
            public_url,
            log_level,
            log_format,
            openai_api_key: reader.secret("OPENAI_API_KEY"),
            openai_base_url: reader.url("OPENAI_BASE_URL")?,
            openai_model: reader.get("ONDA_OPENAI_MODEL").unwrap_or(DEFAULT_OPENAI_MODEL).to_string(),
            anthropic_api_key: reader.secret("ANTHROPIC_API_KEY"),
            anthropic_base_url: reader.url("ONDA_ANTHROPIC_BASE_URL")?,
            anthropic_model: reader
                .get("ONDA_ANTHROPIC_MODEL")
                .unwrap_or(DEFAULT_ANTHROPIC_MODEL)
                .to_string(),
            ai_provider_preference,
            local_model: reader.get("ONDA_LOCAL_MODEL").map(PathBuf::from),
            cartesia_api_key: reader.secret("CARTESIA_API_KEY"),
            cartesia_voice_ids,
            resend_api_key: reader.secret("RESEND_API_KEY"),
            smtp_url: match reader.get("SMTP_URL") {
                None => None,
                Some(v) if v.starts_with("smtp://") || v.starts_with("smtps://") => Some(Secret::new(v)),
                Some(_) => {
                    return Err(ConfigError {
                        variable: "SMTP_URL",
                        value: "[redacted]".into(),
                        hint: "use smtp://user:pass@host:port or smtps://...".into(),
                    });
                }
            },
            parent_alert_from_email: reader
                .get("PARENT_ALERT_FROM_EMAIL")
                .unwrap_or("Onda <alerts@onda.local>")
                .to_string(),
            weekly_summary_from_email: reader
                .get("WEEKLY_SUMMARY_FROM_EMAIL")
                .unwrap_or("Onda <summaries@onda.local>")
                .to_string(),
            google_client_id: reader.get("GOOGLE_CLIENT_ID").map(str::to_string),
            google_client_secret: reader.secret("GOOGLE_CLIENT_SECRET"),
            google_redirect_uri: reader.get("GOOGLE_REDIRECT_URI").map(str::to_string),
            encryption_key: reader.secret("ENCRYPTION_KEY").or_else(|| reader.secret("ENCRYPTION_SECRET")),
            sentry_dsn: reader.secret("SENTRY_DSN"),
            safety_alert_webhook: reader.secret("SAFETY_ALERT_WEBHOOK"),
            rate_limit_enabled: reader.flag("RATE_LIMIT_ENABLED", true)?,
            security_headers_enabled: reader.flag("SECURITY_HEADERS_ENABLED", true)?,
            strict_security_headers: reader.flag("STRICT_SECURITY_HEADERS", true)?,
            enable_voice_input: reader.flag("ENABLE_VOICE_INPUT", true)?,
            enable_parent_dashboard: reader.flag("ENABLE_PARENT_DASHBOARD", true)?,
            enable_whisper_mode: reader.flag("ENABLE_WHISPER_MODE", true)?,
            enable_organic_nudging: reader.flag("ENABLE_ORGANIC_NUDGING", true)?,
            enable_calendar_integration: reader.flag("ENABLE_CALENDAR_INTEGRATION", true)?,
            privacy_policy_version: reader.get("PRIVACY_POLICY_VERSION").unwrap_or("2.0").to_string(),
            terms_of_service_version: reader.get("TERMS_OF_SERVICE_VERSION").unwrap_or("2.0").to_string(),
            default_data_retention_days: reader.parse(
                "DEFAULT_DATA_RETENTION_DAYS",
                "90",
                "a whole number of days, such as 90",
            )?,
            parent_consent_required: match reader.get("PARENT_CONSENT_REQUIRED") {
                Some(_) => reader.flag("PARENT_CONSENT_REQUIRED", true)?,
                None => reader.flag("PARENTAL_CONSENT_REQUIRED", true)?,
            },
            human_moderation_required: reader.flag("HUMAN_MODERATION_REQUIRED", true)?,
            escalation_timeout_seconds: reader.parse(
                "ESCALATION_TIMEOUT_SECONDS",
                "60",
                "a whole number of seconds",
            )?,
            max_child_session_minutes: reader.parse(
                "MAX_CHILD_SESSION_MINUTES",
                "30",
                "a whole number of minutes",
            )?,
            safety_layer_redundancy: reader.flag("SAFETY_LAYER_REDUNDANCY", true)?,
            parent_notifications_enabled: reader.flag("PARENT_NOTIFICATIONS_ENABLED", true)?,
            safety_test_mode: reader.flag("SAFETY_TEST_MODE", false)?,
            mock_external_services: reader.flag("MOCK_EXTERNAL_SERVICES", false)?,
            data_export_enabled: reader.flag("DATA_EXPORT_ENABLED", true)?,
            privacy_audit_enabled: reader.flag("PRIVACY_AUDIT_ENABLED", true)?,
            metrics_token: reader.secret("ONDA_METRICS_TOKEN"),
            metrics_bind: match reader.get("ONDA_METRICS_BIND") {
                None => None,
                Some(_) => {
                    Some(reader.parse("ONDA_METRICS_BIND", "", "an address such as 127.0.0.1:9090")?)
                }
            },
            consent_confirmation_delay_seconds: reader.parse(
                "ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS",
                "86400",
                "a whole number of seconds",
            )?,
            warnings,
        };
        if config.max_child_session_minutes == 0 {
            return Err(reader.invalid("MAX_CHILD_SESSION_MINUTES", "at least 1"));
        }
        Ok(config)
    }

    /// The base URL used in links (emails, redirects).
    pub fn public_base_url(&self, actual_bind: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://localhost:{}", actual_bind.port()),
        }
    }

    /// Whether cookies must carry `Secure` and responses HSTS.
    pub fn is_https(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// What is in force, as `(name, value)` rows with every secret redacted; printed by `config show`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        fn secret(s: &Option<Secret>) -> String {
            match s {
                Some(_) => "[set, redacted]".into(),
                None => "(unset)".into(),
            }
        }
        fn opt<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map_or_else(|| "(unset)".into(), ToString::to_string)
        }
        let database = match &self.database_url {
            Some(url) => redact_url(url.expose()),
            None => format!("sqlite://{} (default)", self.data_dir.join("onda.db").display()),
        };
        vec![
            ("ONDA_BIND", self.bind.to_string()),
            ("ONDA_DATA_DIR", self.data_dir.display().to_string()),
            ("ONDA_MODELS_DIR", self.models_dir.display().to_string()),
            ("ONDA_LOCAL_MODEL", opt(&self.local_model.as_ref().map(|p| p.display()))),
            ("DATABASE_URL", database),
            ("NEXTAUTH_URL", opt(&self.public_url)),
            ("LOG_LEVEL", self.log_level.clone()),
            ("OPENAI_API_KEY", secret(&self.openai_api_key)),
            ("OPENAI_BASE_URL", opt(&self.openai_base_url)),
            ("ONDA_OPENAI_MODEL", self.openai_model.clone()),
            ("ANTHROPIC_API_KEY", secret(&self.anthropic_api_key)),
            ("ONDA_ANTHROPIC_BASE_URL", opt(&self.anthropic_base_url)),
            ("ONDA_ANTHROPIC_MODEL", self.anthropic_model.clone()),
            (
                "AI_PROVIDER_PREFERENCE",
                self.ai_provider_preference
                    .map_or("(first configured, local last)".into(), |p| format!("{p:?}").to_lowercase()),
            ),
            ("CARTESIA_API_KEY", secret(&self.cartesia_api_key)),
            ("RESEND_API_KEY", secret(&self.resend_api_key)),
            ("SMTP_URL", secret(&self.smtp_url)),
            ("PARENT_ALERT_FROM_EMAIL", self.parent_alert_from_email.clone()),
            ("WEEKLY_SUMMARY_FROM_EMAIL", self.weekly_summary_from_email.clone()),
            ("GOOGLE_CLIENT_ID", opt(&self.google_client_id)),
            ("GOOGLE_CLIENT_SECRET", secret(&self.google_client_secret)),
            ("ENCRYPTION_KEY", secret(&self.encryption_key)),
            ("SENTRY_DSN", secret(&self.sentry_dsn)),
            ("SAFETY_ALERT_WEBHOOK", secret(&self.safety_alert_webhook)),
            ("RATE_LIMIT_ENABLED", self.rate_limit_enabled.to_string()),
            ("SECURITY_HEADERS_ENABLED", self.security_headers_enabled.to_string()),
            ("STRICT_SECURITY_HEADERS", self.strict_security_headers.to_string()),
            ("ENABLE_VOICE_INPUT", self.enable_voice_input.to_string()),
            ("ENABLE_PARENT_DASHBOARD", self.enable_parent_dashboard.to_string()),
            ("ENABLE_WHISPER_MODE", self.enable_whisper_mode.to_string()),
            ("ENABLE_ORGANIC_NUDGING", self.enable_organic_nudging.to_string()),
            ("ENABLE_CALENDAR_INTEGRATION", self.enable_calendar_integration.to_string()),
            ("PRIVACY_POLICY_VERSION", self.privacy_policy_version.clone()),
            ("TERMS_OF_SERVICE_VERSION", self.terms_of_service_version.clone()),
            ("DEFAULT_DATA_RETENTION_DAYS", self.default_data_retention_days.to_string()),
            ("PARENT_CONSENT_REQUIRED", self.parent_consent_required.to_string()),
            ("HUMAN_MODERATION_REQUIRED", self.human_moderation_required.to_string()),
            ("ESCALATION_TIMEOUT_SECONDS", self.escalation_timeout_seconds.to_string()),
            ("MAX_CHILD_SESSION_MINUTES", self.max_child_session_minutes.to_string()),
            ("SAFETY_LAYER_REDUNDANCY", self.safety_layer_redundancy.to_string()),
            ("PARENT_NOTIFICATIONS_ENABLED", self.parent_notifications_enabled.to_string()),
            ("SAFETY_TEST_MODE", self.safety_test_mode.to_string()),
            ("MOCK_EXTERNAL_SERVICES", self.mock_external_services.to_string()),
            ("DATA_EXPORT_ENABLED", self.data_export_enabled.to_string()),
            ("PRIVACY_AUDIT_ENABLED", self.privacy_audit_enabled.to_string()),
            ("ONDA_METRICS_TOKEN", secret(&self.metrics_token)),
            ("ONDA_METRICS_BIND", opt(&self.metrics_bind)),
        ]
    }
}

fn default_models_dir(vars: &BTreeMap<String, String>) -> PathBuf {
    match vars.get("HOME") {
        Some(home) => Path::new(home).join(".cache/onda/models"),
        None => PathBuf::from("./models"),
    }
}

/// Hides the password of a connection URL.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("redacted"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
}

impl Reader<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim())
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret::new)
    }

    fn invalid(&self, variable: &'static str, hint: &str) -> ConfigError {
        ConfigError {
            variable,
            value: self.get(variable).unwrap_or_default().to_string(),
            hint: hint.to_string(),
        }
    }

    fn flag(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(variable).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(_) => Err(self.invalid(variable, "true or false")),
        }
    }

    fn parse<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: &str,
        hint: &str,
    ) -> Result<T, ConfigError> {
        self.get(variable).unwrap_or(default).parse().map_err(|_| self.invalid(variable, hint))
    }

    fn url(&self, variable: &'static str) -> Result<Option<url::Url>, ConfigError> {
        match self.get(variable) {
            None => Ok(None),
            Some(raw) => match url::Url::parse(raw) {
                Ok(url) if url.scheme() == "http" || url.scheme() == "https" => Ok(Some(url)),
                _ => Err(self.invalid(variable, "an http:// or https:// URL")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let config = Config::from_vars(vars(&[])).expect("defaults are valid");
        assert_eq!(config.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(config.default_data_retention_days, 90);
        assert!(config.parent_consent_required);
        assert!(config.database_url.is_none());
        assert_eq!(config.privacy_policy_version, "2.0");
    }

    #[test]
    fn invalid_values_say_what_to_set() {
        let err = Config::from_vars(vars(&[("RATE_LIMIT_ENABLED", "maybe")])).expect_err("invalid");
        assert_eq!(err.variable, "RATE_LIMIT_ENABLED");
        assert!(err.to_string().contains("true or false"));
        let err = Config::from_vars(vars(&[("ONDA_BIND", "nowhere")])).expect_err("invalid");
        assert_eq!(err.variable, "ONDA_BIND");
        let err = Config::from_vars(vars(&[("DATABASE_URL", "mysql://x")])).expect_err("invalid");
        assert_eq!(err.variable, "DATABASE_URL");
    }

    #[test]
    fn secrets_never_show() {
        let config = Config::from_vars(vars(&[
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("DATABASE_URL", "postgres://onda:hunter2@db/onda"),
        ]))
        .expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-very-secret"));
        assert!(!debug.contains("hunter2"));
        let shown = format!("{:?}", config.describe());
        assert!(!shown.contains("sk-very-secret"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn unknown_onda_variables_are_warned_about() {
        let config = Config::from_vars(vars(&[("ONDA_BINDD", "x")])).expect("valid");
        assert_eq!(config.warnings.len(), 1);
        assert!(config.warnings[0].contains("ONDA_BINDD"));
    }

    #[test]
    fn a_separate_metrics_listener_is_an_address() {
        let config = Config::from_vars(vars(&[("ONDA_METRICS_BIND", "127.0.0.1:9464")])).expect("valid");
        assert_eq!(config.metrics_bind.map(|a| a.port()), Some(9464));
        assert!(config.warnings.is_empty());
        let err = Config::from_vars(vars(&[("ONDA_METRICS_BIND", "9464")])).expect_err("invalid");
        assert_eq!(err.variable, "ONDA_METRICS_BIND");
    }

    #[test]
    fn chat_models_and_the_anthropic_base_url_are_configurable() {
        let config = Config::from_vars(vars(&[])).expect("defaults are valid");
        assert_eq!(config.openai_model, DEFAULT_OPENAI_MODEL);
        assert_eq!(config.anthropic_model, DEFAULT_ANTHROPIC_MODEL);
        assert!(config.anthropic_base_url.is_none());
        let config = Config::from_vars(vars(&[
            ("ONDA_OPENAI_MODEL", "llama3.2"),
            ("ONDA_ANTHROPIC_MODEL", "claude-x"),
            ("ONDA_ANTHROPIC_BASE_URL", "http://127.0.0.1:9999"),
        ]))
        .expect("valid");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        assert_eq!(config.openai_model, "llama3.2");
        assert_eq!(config.anthropic_model, "claude-x");
        let shown = config.describe();
        for name in ["ONDA_OPENAI_MODEL", "ONDA_ANTHROPIC_MODEL", "ONDA_ANTHROPIC_BASE_URL"] {
            assert!(shown.iter().any(|(n, _)| *n == name), "{name} is shown");
        }
        let err = Config::from_vars(vars(&[("ONDA_ANTHROPIC_BASE_URL", "ftp://x")])).expect_err("invalid");
        assert_eq!(err.variable, "ONDA_ANTHROPIC_BASE_URL");
    }

    #[test]
    fn the_older_consent_variable_name_is_honoured() {
        let config = Config::from_vars(vars(&[("PARENTAL_CONSENT_REQUIRED", "false")])).expect("valid");
        assert!(!config.parent_consent_required);
    }
}
