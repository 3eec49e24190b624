//! Operator subcommands: migrate, backup, restore, health-check.
//!
//! Each command has a library function taking `&Config` that does the work and returns what happened
//! (tests call these), and a thin entry point that prints it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::config::{Config, redact_url};
use crate::domain::health::{self, Check, Part, Report, Subsystems};
use crate::providers::email::OutboxMailer;
use crate::storage::{DatabaseLocation, Pool, Store};

// ---------------------------------------------------------------------------------------------------
// migrate

#[derive(Debug)]
pub struct MigrateReport {
    pub backend: &'static str,
    /// Where, with any password redacted.
    pub database: String,
    /// Applied by this run.
    pub newly_applied: Vec<(i64, String)>,
    /// Everything the database has applied now.
    pub applied: Vec<(i64, String)>,
}

/// Opens the configured database (creating a SQLite file when missing) and applies pending migrations.
pub async fn run_migrations(config: &Config) -> anyhow::Result<MigrateReport> {
    let location = DatabaseLocation::from_config(config);
    let store = Store::connect(&location)
        .await
        .with_context(|| format!("cannot open the database {}", describe_location(&location)))?;
    let result = async {
        let before = health::migration_state(&store).await?.map(|s| s.applied).unwrap_or_default();
        store.migrate().await.context("applying migrations failed")?;
        let after = health::migration_state(&store).await?.map(|s| s.applied).unwrap_or_default();
        let newly_applied = after.iter().filter(|m| !before.contains(m)).cloned().collect();
        anyhow::Ok(MigrateReport {
            backend: location.backend_name(),
            database: describe_location(&location),
            newly_applied,
            applied: after,
        })
    }
    .await;
    store.close().await;
    result
}

pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let report = run_migrations(&config).await?;
    println!("database: {} ({})", report.database, report.backend);
    if report.newly_applied.is_empty() {
        println!("nothing to apply: the schema is up to date");
    } else {
        println!("applied now: {}", list_migrations(&report.newly_applied));
    }
    println!("migrations in the database: {}", list_migrations(&report.applied));
    Ok(())
}

fn list_migrations(migrations: &[(i64, String)]) -> String {
    if migrations.is_empty() {
        return "none".into();
    }
    migrations.iter().map(|(v, d)| format!("{v:04} {d}")).collect::<Vec<_>>().join(", ")
}

fn describe_location(location: &DatabaseLocation) -> String {
    match location {
        DatabaseLocation::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseLocation::Postgres(url) => redact_url(url),
    }
}

// ---------------------------------------------------------------------------------------------------
// backup

#[derive(Debug)]
pub struct BackupReport {
    pub backend: &'static str,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes a consistent copy of the database to `path` while the server may be running.
///
/// SQLite: `VACUUM INTO` a temporary file beside the target, checked, then renamed into place.
/// PostgreSQL: `pg_dump --format=custom` (for `pg_restore`). An existing file is replaced only with
/// `overwrite`; an existing directory receives a file named after the time.
pub async fn backup_database(config: &Config, path: &Path, overwrite: bool) -> anyhow::Result<BackupReport> {
    let location = DatabaseLocation::from_config(config);
    let extension = match location {
        DatabaseLocation::Sqlite(_) => "db",
        DatabaseLocation::Postgres(_) => "dump",
    };
    let target = if path.is_dir() {
        path.join(format!("onda-backup-{}.{extension}", file_timestamp()))
    } else {
        path.to_path_buf()
    };
    if target.exists() && !overwrite {
        bail!("{} already exists; choose another path, or pass --force to replace it", target.display());
    }
    let parent = parent_dir(&target);
    if !parent.is_dir() {
        bail!("the folder {} does not exist", parent.display());
    }
    let partial = partial_path(&target);
    let written = match &location {
        DatabaseLocation::Sqlite(db) => backup_sqlite(db, &partial).await,
        DatabaseLocation::Postgres(url) => backup_postgres(url, &partial).await,
    };
    if let Err(err) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("moving the backup to {}", target.display()))?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or_default();
    Ok(BackupReport { backend: location.backend_name(), path: target, bytes })
}

pub async fn backup(config: Config, path: &Path, overwrite: bool) -> anyhow::Result<()> {
    let report = backup_database(&config, path, overwrite).await?;
    println!(
        "backed up the {} database to {} ({} bytes)",
        report.backend,
        report.path.display(),
        report.bytes
    );
    println!("restore it with: onda restore {}", report.path.display());
    Ok(())
}

async fn backup_sqlite(db: &Path, partial: &Path) -> anyhow::Result<()> {
    if !db.is_file() {
        bail!(
            "there is no database at {}: nothing to back up (check DATABASE_URL and ONDA_DATA_DIR)",
            db.display()
        );
    }
    let store = Store::connect(&DatabaseLocation::Sqlite(db.to_path_buf()))
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let copied = store.sqlite_backup_into(partial).await;
    store.close().await;
    copied.context("copying the database (VACUUM INTO) failed")?;
    verify_sqlite_file(partial).await.context("the copy did not verify")?;
    Ok(())
}

async fn backup_postgres(url: &str, partial: &Path) -> anyhow::Result<()> {
    let pg_dump = require_tool("pg_dump")?;
    let (url, password) = split_password(url);
    let mut command = tokio::process::Command::new(pg_dump);
    command.arg("--format=custom").arg("--no-password").arg("--file").arg(partial).arg("--dbname").arg(&url);
    run_pg_tool(command, password, "pg_dump").await?;
    if let Some(pg_restore) = find_tool("pg_restore") {
        verify_postgres_dump(&pg_restore, partial).await.context("the dump did not verify")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// restore

#[derive(Debug)]
pub struct RestoreReport {
    pub backend: &'static str,
    /// SQLite: where the database that was replaced now is (kept, never deleted).
    pub previous: Option<PathBuf>,
}

/// Brings back a backup made by [`backup_database`]. Stop the server first.
///
/// SQLite: the file must be a SQLite database with Onda's migrations table (and none newer than this
/// build knows); it is copied beside the configured database and renamed over it, and the replaced
/// database (with its `-wal` and `-shm` files) is moved aside, not deleted. PostgreSQL:
/// `pg_restore --clean --if-exists --single-transaction`, all or nothing. A database that holds
/// accounts is replaced only with `force`.
pub async fn restore_database(config: &Config, path: &Path, force: bool) -> anyhow::Result<RestoreReport> {
    if !path.is_file() {
        bail!("there is no backup file at {}", path.display());
    }
    let location = DatabaseLocation::from_config(config);
    match &location {
        DatabaseLocation::Sqlite(db) => restore_sqlite(path, db, force).await,
        DatabaseLocation::Postgres(url) => restore_postgres(path, &location, url, force).await,
    }
}

pub async fn restore(config: Config, path: &Path, force: bool) -> anyhow::Result<()> {
    let report = restore_database(&config, path, force).await?;
    println!("restored the {} database from {}", report.backend, path.display());
    if let Some(previous) = report.previous {
        println!("the database it replaced is kept at {}", previous.display());
    }
    println!("start the server again: it applies any newer migrations at start");
    Ok(())
}

async fn restore_sqlite(source: &Path, db: &Path, force: bool) -> anyhow::Result<RestoreReport> {
    let same =
        std::fs::canonicalize(source).ok().zip(std::fs::canonicalize(db).ok()).is_some_and(|(a, b)| a == b);
    if same {
        bail!("{} is the configured database itself", source.display());
    }
    verify_sqlite_file(source).await?;
    if db.exists() && !force {
        match sqlite_account_count(db).await {
            Ok(0) => {}
            Ok(n) => bail!(
                "the database at {} holds {n} account(s); stop the server and pass --force to replace it",
                db.display()
            ),
            Err(err) => bail!(
                "cannot read the database at {} ({err:#}); pass --force to replace it anyway",
                db.display()
            ),
        }
    }
    let parent = parent_dir(db);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = partial_path(db);
    let copied = async {
        std::fs::copy(source, &partial).with_context(|| format!("copying {}", source.display()))?;
        std::fs::File::open(&partial).and_then(|f| f.sync_all()).context("writing the copy to disk")?;
        verify_sqlite_file(&partial).await
    }
    .await;
    if let Err(err) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }

    // Move the current database aside with its journal files, so no stale `-wal` is ever applied to
    // the restored file and nothing is lost if the operator picked the wrong backup.
    let mut previous = None;
    if db.exists() {
        let aside = with_suffix(db, &format!(".before-restore-{}", file_timestamp()));
        std::fs::rename(db, &aside).with_context(|| format!("moving {} aside", db.display()))?;
        previous = Some(aside);
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        let stale = with_suffix(db, suffix);
        if stale.exists() {
            match &previous {
                Some(aside) => std::fs::rename(&stale, with_suffix(aside, suffix)),
                None => std::fs::remove_file(&stale),
            }
            .with_context(|| format!("moving {} aside", stale.display()))?;
        }
    }
    std::fs::rename(&partial, db)
        .with_context(|| format!("moving the restored database to {}", db.display()))?;
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    Ok(RestoreReport { backend: "sqlite", previous })
}

async fn restore_postgres(
    source: &Path,
    location: &DatabaseLocation,
    url: &str,
    force: bool,
) -> anyhow::Result<RestoreReport> {
    let pg_restore = require_tool("pg_restore")?;
    verify_postgres_dump(&pg_restore, source).await?;
    if !force {
        let store = Store::connect(location)
            .await
            .with_context(|| format!("cannot connect to {}", describe_location(location)))?;
        let accounts = postgres_account_count(&store).await;
        store.close().await;
        match accounts {
            Ok(0) => {}
            Ok(n) => {
                bail!("the database holds {n} account(s); stop the server and pass --force to replace it")
            }
            Err(err) => bail!("cannot read the database ({err:#}); pass --force to replace it anyway"),
        }
    }
    let (url, password) = split_password(url);
    let mut command = tokio::process::Command::new(pg_restore);
    command
        .args(["--clean", "--if-exists", "--no-owner", "--single-transaction", "--no-password"])
        .arg("--dbname")
        .arg(&url)
        .arg(source);
    run_pg_tool(command, password, "pg_restore").await?;
    Ok(RestoreReport { backend: "postgres", previous: None })
}

/// Opens a SQLite file read-only and checks it is a sound Onda database this build can run.
pub async fn verify_sqlite_file(path: &Path) -> anyhow::Result<Vec<(i64, String)>> {
    let options =
        SqliteConnectOptions::new().filename(path).read_only(true).immutable(true).create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|_| anyhow!("{} is not a SQLite database", path.display()))?;
    let result = async {
        let check: String = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_one(&mut conn)
            .await
            .map_err(|_| anyhow!("{} is not a SQLite database", path.display()))?;
        if check != "ok" {
            bail!("{} is damaged: {check}", path.display());
        }
        let applied: Vec<(i64, String)> = sqlx::query_as(
            "SELECT version, description FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(|_| {
            anyhow!("{} is a SQLite database but not an Onda one (no migrations table)", path.display())
        })?;
        let known = health::known_migrations("sqlite");
        if let Some((v, _)) = applied.iter().find(|(v, _)| !known.iter().any(|(k, _)| k == v)) {
            bail!(
                "{} was made by a newer version of Onda (migration {v}); upgrade Onda first",
                path.display()
            );
        }
        Ok(applied)
    }
    .await;
    let _ = conn.close().await;
    result
}

async fn sqlite_account_count(db: &Path) -> anyhow::Result<i64> {
    let options = SqliteConnectOptions::new().filename(db).read_only(true).create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let has_users: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'")
            .fetch_one(&mut conn)
            .await?;
    let count = if has_users > 0 {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut conn).await?
    } else {
        0
    };
    let _ = conn.close().await;
    Ok(count)
}

async fn postgres_account_count(store: &Store) -> anyhow::Result<i64> {
    let Pool::Postgres(pool) = store.pool() else { bail!("not a PostgreSQL database") };
    let has_users: bool =
        sqlx::query_scalar("SELECT to_regclass('users') IS NOT NULL").fetch_one(pool).await?;
    if !has_users {
        return Ok(0);
    }
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?)
}

/// A custom-format dump `pg_restore` can read, holding Onda's migrations table.
async fn verify_postgres_dump(pg_restore: &Path, dump: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(pg_restore)
        .arg("--list")
        .arg(dump)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running pg_restore --list")?;
    if !output.status.success() {
        bail!(
            "{} is not a PostgreSQL custom-format dump (make one with `onda backup`): {}",
            dump.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if !String::from_utf8_lossy(&output.stdout).contains("_sqlx_migrations") {
        bail!("{} is a PostgreSQL dump but not of an Onda database (no migrations table)", dump.display());
    }
    Ok(())
}

async fn run_pg_tool(
    mut command: tokio::process::Command,
    password: Option<String>,
    name: &str,
) -> anyhow::Result<()> {
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.stdin(Stdio::null()).output().await.with_context(|| format!("running {name}"))?;
    if !output.status.success() {
        bail!("{name} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// The URL without its password, and the password (percent-decoded) to hand over in `PGPASSWORD`, so
/// it never shows in the process list.
fn split_password(url: &str) -> (String, Option<String>) {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let password = parsed.password().map(percent_decode);
            let _ = parsed.set_password(None);
            (parsed.to_string(), password)
        }
        _ => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Looks a program up on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    find_tool_in(name, &std::env::var_os("PATH").unwrap_or_default())
}

pub fn find_tool_in(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The message when a PostgreSQL client tool is missing.
pub fn missing_tool_message(name: &str) -> String {
    format!(
        "{name} was not found on PATH: install the PostgreSQL client tools of your server's version \
         (for example `apt-get install postgresql-client`), or add their folder to PATH"
    )
}

fn require_tool(name: &str) -> anyhow::Result<PathBuf> {
    find_tool(name).ok_or_else(|| anyhow!(missing_tool_message(name)))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A hidden temporary file beside `target`, so the final rename stays on one filesystem.
fn partial_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "onda".into());
    parent_dir(target).join(format!(".{name}.partial-{}", uuid::Uuid::new_v4().simple()))
}

fn file_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

// ---------------------------------------------------------------------------------------------------
// health-check

/// Checks every subsystem in this process, from the configuration alone.
///
/// It observes and never changes anything: the database is opened without migrating, and a SQLite
/// file that does not exist is reported rather than created. A schema older than this build counts as
/// healthy (the server migrates at start) and is mentioned; no schema, or a newer one, fails.
pub async fn health_report_in_process(config: &Config) -> Report {
    let location = DatabaseLocation::from_config(config);
    let started = Instant::now();
    let store = match &location {
        DatabaseLocation::Sqlite(path) if !path.is_file() => Err(format!(
            "there is no database at {}: the server creates it at first start, or run `onda migrate`",
            path.display()
        )),
        _ => tokio::time::timeout(health::CHECK_TIMEOUT, Store::connect(&location))
            .await
            .map_err(|_| "the database did not answer in time".to_string())
            .and_then(|r| r.map_err(|e| format!("cannot connect to the database: {}", error_chain(&e)))),
    };
    let mailer = OutboxMailer::new(config.outbox_dir());
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    // The engine the server would run (with the embedding model when it is fetched), checked the same way.
    let engine = crate::domain::safety_engine(config.safety_layer_redundancy, &config.models_dir)
        .map_err(|e| format!("{e:#}"));
    let safety = match &engine {
        Ok(engine) => Ok(engine.as_ref()),
        Err(reason) => Err(reason.as_str()),
    };
    match store {
        Ok(store) => {
            let report =
                Subsystems { config, store: &store, mailer: &mailer, safety }.report(&Part::ALL, now).await;
            store.close().await;
            report
        }
        Err(message) => {
            let mut checks = vec![(Part::Database, Check::failed(Part::Database, started, &message))];
            for part in Part::ALL.into_iter().filter(|p| *p != Part::Database) {
                let check = match part {
                    Part::Safety => health::check_safety(config, safety),
                    Part::Ai => health::check_ai(config),
                    Part::Voice => health::check_voice(config),
                    _ => health::check_email(&mailer).await,
                };
                checks.push((part, check));
            }
            Report::new(now, checks)
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Asks a running server's `GET /api/health`; answers the HTTP status and the JSON report.
pub async fn health_report_remote(base: &str) -> anyhow::Result<(u16, Value)> {
    let base = url::Url::parse(base).with_context(|| format!("{base} is not a URL"))?;
    if base.scheme() != "http" {
        bail!(
            "health-check --url speaks plain http://; check an https:// server from its own host, or through curl"
        );
    }
    let mut url = base.clone();
    url.set_path(&format!("{}/api/health", base.path().trim_end_matches('/')));
    url.set_query(None);
    let (status, body) = http_get(&url).await?;
    let report: Value = serde_json::from_slice(&body)
        .map_err(|_| anyhow!("{url} answered {status} without a health report"))?;
    if report.get("checks").is_none() {
        bail!("{url} answered {status} without a health report");
    }
    Ok((status, report))
}

/// One ✅/❌ line per subsystem, critical parts first, and whether every critical part is healthy.
pub fn health_lines(report: &Value) -> (Vec<String>, bool) {
    let Some(checks) = report.get("checks").and_then(Value::as_object) else {
        return (vec!["❌ server: no health report".into()], false);
    };
    let mut names: Vec<&String> = checks.keys().collect();
    names.sort_by_key(|name| (Part::parse(name).map_or(usize::MAX, |p| p as usize), name.to_string()));
    let mut critical_ok = true;
    let mut lines = Vec::new();
    for name in names {
        let check = &checks[name.as_str()];
        let healthy = check.get("healthy").and_then(Value::as_bool).unwrap_or(false);
        let critical = check
            .get("critical")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| Part::parse(name).is_some_and(Part::is_critical));
        if critical && !healthy {
            critical_ok = false;
        }
        let mark = if healthy { "✅" } else { "❌" };
        let summary = health::summary_of(check);
        lines.push(if summary.is_empty() {
            format!("{mark} {name}")
        } else {
            format!("{mark} {name}: {summary}")
        });
    }
    let status = report.get("status").and_then(Value::as_str).unwrap_or("unknown");
    if status == "unhealthy" {
        critical_ok = false;
    }
    lines.push(format!("onda is {status}"));
    (lines, critical_ok)
}

pub async fn health_check(config: Config, url: Option<&str>) -> anyhow::Result<()> {
    let report = match url {
        None => serde_json::to_value(health_report_in_process(&config).await)?,
        Some(url) => match health_report_remote(url).await {
            Ok((_, report)) => report,
            Err(err) => {
                println!("❌ server: {err:#}");
                bail!("the server at {url} did not answer the health check");
            }
        },
    };
    let (lines, critical_ok) = health_lines(&report);
    for line in lines {
        println!("{line}");
    }
    if critical_ok { Ok(()) } else { bail!("a critical subsystem is unhealthy") }
}

/// A minimal HTTP/1.1 GET over a plain TCP connection (no TLS), enough for a health report.
async fn http_get(url: &url::Url) -> anyhow::Result<(u16, Vec<u8>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(10);
    const MAX_RESPONSE: u64 = 1024 * 1024;
    let port = url.port_or_known_default().unwrap_or(80);
    let host_header = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let connect = async {
        match url.host() {
            Some(url::Host::Domain(domain)) => tokio::net::TcpStream::connect((domain, port)).await,
            Some(url::Host::Ipv4(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            Some(url::Host::Ipv6(ip)) => tokio::net::TcpStream::connect((ip, port)).await,
            None => Err(std::io::Error::other("no host in the URL")),
        }
    };
    let exchange = async {
        let mut stream = connect.await.with_context(|| format!("cannot connect to {host_header}"))?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\n\
             User-Agent: onda-health-check\r\nConnection: close\r\n\r\n",
            url.path()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{url} did not answer within {} seconds", TIMEOUT.as_secs()))??;
    parse_http_response(&raw)
}

/// Splits a raw HTTP/1.1 response into its status and body (decoding a chunked body).
fn parse_http_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("not an HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not an HTTP response"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut decoded = Vec::new();
    let mut rest = body;
    loop {
        let line_end =
            rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| anyhow!("bad chunked body"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
            .map_err(|_| anyhow!("bad chunked body"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        if rest.len() < size {
            bail!("bad chunked body");
        }
        decoded.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
    Ok((status, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses_are_parsed_plain_and_chunked() {
        let plain = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_http_response(plain).expect("parsed"), (503, b"{}".to_vec()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_http_response(chunked).expect("parsed"), (200, b"{\"a\":1}".to_vec()));
        assert!(parse_http_response(b"garbage").is_err());
    }

    #[test]
    fn passwords_leave_the_url_for_the_environment() {
        let (url, password) =
            split_password("postgres://onda:p%40ss%2Fword@db.example:5432/onda?sslmode=require");
        assert_eq!(url, "postgres://onda@db.example:5432/onda?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss/word"));
        let (url, password) = split_password("postgres://onda@db/onda");
        assert_eq!(url, "postgres://onda@db/onda");
        assert_eq!(password, None);
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_get_it() {
        assert_eq!(find_tool_in("pg_dump", OsStr::new("")), None);
        let message = missing_tool_message("pg_dump");
        assert!(message.contains("pg_dump was not found on PATH"));
        assert!(message.contains("postgresql-client"));
    }

    #[test]
    fn health_lines_mark_each_part_and_fail_on_the_critical_one() {
        let report = serde_json::json!({
            "status": "degraded",
            "checks": {
                "email": { "healthy": true, "responseTime": 0.2, "mailer": "outbox folder x" },
                "database": { "healthy": true, "responseTime": 1.0, "critical": true, "backend": "sqlite" },
                "safety": { "healthy": false, "responseTime": 0.0, "status": "not_built" },
            }
        });
        let (lines, ok) = health_lines(&report);
        assert!(ok);
        assert_eq!(lines[0], "✅ database: sqlite, 1.0 ms");
        assert!(lines[1].starts_with("❌ safety: not built yet"));
        assert!(lines[2].starts_with("✅ email: outbox folder x"));
        assert_eq!(lines[3], "onda is degraded");
        let broken = serde_json::json!({
            "status": "unhealthy",
            "checks": { "database": { "healthy": false, "critical": true, "error": "database unreachable" } }
        });
        let (lines, ok) = health_lines(&broken);
        assert!(!ok);
        assert_eq!(lines[0], "❌ database: database unreachable");
    }
}
