//! One storage interface over SQLite and PostgreSQL.
//!
//! The backend is chosen once, from the URL scheme. Every query is written once and compiled for both
//! backends by [`with_pool!`], so there is no backend `if` at call sites and no query that exists for
//! one database only. Times are Unix milliseconds and identifiers UUID text on both backends.

mod accounts;
mod audit;
mod children;
mod consent;
mod conversation;
mod family;
mod jobs;
pub mod testing;

pub use accounts::*;
pub use audit::*;
pub use children::*;
pub use consent::*;
pub use conversation::*;
pub use jobs::*;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Where the database lives, parsed from `DATABASE_URL` (or the default file in the data directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseLocation {
    /// Accepts `sqlite://path`, `sqlite:path` and `postgres://` / `postgresql://` URLs. A bare path is
    /// refused: it is more often a typo than a wish for a new empty database.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err("give a file path, such as sqlite://./data/onda.db (an in-memory database would lose every family at restart)".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err("use sqlite://path/to/onda.db or postgres://user:password@host/database".into())
    }

    pub fn from_config(config: &crate::config::Config) -> Self {
        match &config.database_url {
            // Already validated while reading the configuration.
            Some(url) => {
                Self::parse(url.expose()).unwrap_or_else(|_| Self::Sqlite(config.data_dir.join("onda.db")))
            }
            None => Self::Sqlite(config.data_dir.join("onda.db")),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or check constraint refused the write; the string names the constraint.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_check_violation() || db.is_foreign_key_violation() =>
            {
                StorageError::Conflict(db.constraint().unwrap_or(db.message()).to_string())
            }
            _ => StorageError::Database(err),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database, on whichever backend the configuration chose.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// Runs the same code against whichever pool the store holds; the body is compiled once per backend.
#[macro_export]
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.pool() {
            $crate::storage::Pool::Sqlite($pool) => $body,
            $crate::storage::Pool::Postgres($pool) => $body,
        }
    };
}
pub use with_pool;

impl Store {
    /// Connects and applies this backend's migrations.
    pub async fn open(location: &DatabaseLocation) -> StorageResult<Self> {
        let store = Self::connect(location).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(location: &DatabaseLocation) -> StorageResult<Self> {
        let pool = match location {
            DatabaseLocation::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StorageError::Database(sqlx::Error::Io(e)))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                Pool::Sqlite(SqlitePoolOptions::new().max_connections(8).connect_with(options).await?)
            }
            DatabaseLocation::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(10)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect_with(options)
                        .await?,
                )
            }
        };
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> StorageResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, used by the health check.
    pub async fn ping(&self) -> StorageResult<()> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?);
        Ok(())
    }

    /// Whether any family that is not the demo family exists (so `seed --demo` may not run).
    pub async fn has_real_families(&self) -> StorageResult<bool> {
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM families WHERE is_demo = FALSE")
                .fetch_one(pool)
                .await?
        });
        Ok(count > 0)
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }

    /// Writes a consistent copy of a SQLite database to `target` while it is in use.
    pub async fn sqlite_backup_into(&self, target: &Path) -> StorageResult<()> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let target = target.to_string_lossy().to_string();
                sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await?.rows_affected();
                Ok(())
            }
            Pool::Postgres(_) => Err(StorageError::Conflict("not a SQLite database".into())),
        }
    }
}

/// A new random identifier.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
