//! One storage interface over SQLite and PostgreSQL.
//!
//! The backend is chosen once, from the URL scheme. Every query is written once and compiled for both
//! backends by [`with_pool!`] (reads) and [`with_writer!`] (anything that writes), so there is no
//! backend `if` at call sites and no query that exists for one database only. Times are Unix
//! milliseconds and identifiers UUID text on both backends.
//!
//! SQLite takes one writer at a time, and a connection that finds the database locked waits in SQLite's
//! busy handler, which sleeps for 1, 2, 5, 10... milliseconds between tries: with many children chatting
//! at once, writers collided and replies waited for those sleeps. So on SQLite every write goes through
//! a pool of one connection of its own, where writers queue without sleeping, while reads use the other
//! connections (in WAL mode they never wait for the writer). On PostgreSQL both are the same pool.

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

/// Connections for reads on SQLite (besides the writer). Each one's page cache is emptied whenever
/// another connection has written since its last read, so more connections than a small server has
/// cores only cost time: with 8, the chat benchmark needed about 15% more CPU per message than with 4.
const SQLITE_READERS: u32 = 4;

/// How often the server copies SQLite's write-ahead log into the database file, off the write path
/// ([`Store::checkpoint`]). SQLite's own checkpoint runs inside the commit that fills the log (every 1,000
/// pages by default): that commit, and every write queued behind it on the one writer, waited for pages
/// to be copied and flushed. With the checkpoints moved to a background task, the chat benchmark's p99
/// (alternating runs on 2026-11-27, seven before and five after) went for one child from 6.5-7.4 ms to
/// 2.7-3.8 ms (one run 6.5), and with 100 children from a median of 8.6 ms (7.4-9.6) to 6.7 ms (6.4-8.3).
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// The writer's own checkpoint still runs when the log reaches this many pages (about 40 MB): a bound on
/// the log when nothing checkpoints in the background (a command other than `serve`, or a stalled task).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The database, on whichever backend the configuration chose.
#[derive(Clone, Debug)]
pub struct Store {
    /// For reads.
    pool: Pool,
    /// For writes: on SQLite a single connection (see the module docs), on PostgreSQL the same pool.
    writer: Pool,
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

/// [`with_pool!`] for code that writes (a statement that changes rows, or a transaction that does): it
/// runs on the store's writer.
#[macro_export]
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.writer() {
            $crate::storage::Pool::Sqlite($pool) => $body,
            $crate::storage::Pool::Postgres($pool) => $body,
        }
    };
}
pub use with_writer;

impl Store {
    /// Connects and applies this backend's migrations.
    pub async fn open(location: &DatabaseLocation) -> StorageResult<Self> {
        let store = Self::connect(location).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(location: &DatabaseLocation) -> StorageResult<Self> {
        match location {
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
                // A SQLite connection is a file opened in this process: it cannot go stale, so the pools
                // do not ping it before each query (a round trip to its worker thread every time). The
                // writer opens first: it creates the file and switches it to WAL.
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_with(
                        options.clone().pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES.to_string()),
                    )
                    .await?;
                let readers = SqlitePoolOptions::new()
                    .max_connections(SQLITE_READERS)
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Self { pool: Pool::Sqlite(readers), writer: Pool::Sqlite(writer) })
            }
            DatabaseLocation::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(10)
                        .acquire_timeout(Duration::from_secs(5))
                        .connect_with(options)
                        .await?,
                );
                Ok(Self { writer: pool.clone(), pool })
            }
        }
    }

    pub async fn migrate(&self) -> StorageResult<()> {
        match &self.writer {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// The pool for reads.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool for writes (see the module docs).
    pub fn writer(&self) -> &Pool {
        &self.writer
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// On SQLite, copies the write-ahead log into the database file without waiting for (or blocking)
    /// the writer or the readers: a passive checkpoint, on a reader connection. Returns the log's size and
    /// how much of it is now in the database (in pages). PostgreSQL checkpoints by itself: nothing to do.
    pub async fn checkpoint(&self) -> StorageResult<Option<(i64, i64)>> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let (_busy, log, checkpointed): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
                Ok(Some((log, checkpointed)))
            }
            Pool::Postgres(_) => Ok(None),
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
        with_writer!(self, pool => pool.close().await);
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
