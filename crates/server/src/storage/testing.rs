//! Fresh databases for tests, one per test, on either backend.
//!
//! PostgreSQL tests create a database named `onda_test_<uuid>` through the server named by
//! `ONDA_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`; `./scripts/test`
//! starts a server when none answers) and drop it when the test ends.

use std::path::PathBuf;

use super::DatabaseLocation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BOTH_BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A database that exists for the lifetime of this value.
pub use tempfile_dir::TempDir;

pub struct TestDatabase {
    pub location: DatabaseLocation,
    _dir: Option<TempDir>,
    drop_postgres: Option<(String, String)>,
}

// A tiny temporary-directory holder, so the library does not depend on `tempfile` outside tests.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    /// A fresh directory under the system's temporary folder, removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> std::io::Result<Self> {
            let path = std::env::temp_dir().join(format!("onda-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("ONDA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new().expect("temporary directory");
                let path: PathBuf = dir.path().join("onda.db");
                Self { location: DatabaseLocation::Sqlite(path), _dir: Some(dir), drop_postgres: None }
            }
            Backend::Postgres => Self::postgres_on(&postgres_admin_url()).await,
        }
    }

    /// A fresh database `onda_test_<uuid>` created through the PostgreSQL server at `admin` (a URL
    /// whose user may create databases), dropped again when this value is.
    pub async fn postgres_on(admin: &str) -> Self {
        use sqlx::Connection;
        let name = format!("onda_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL server answers at {admin}: {e} (tests: set ONDA_TEST_DATABASE_URL, or \
                 run ./scripts/test, which starts one)"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let mut url = url::Url::parse(admin).expect("the PostgreSQL server's address is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            location: DatabaseLocation::Postgres(url.to_string()),
            _dir: None,
            drop_postgres: Some((admin.to_string(), name)),
        }
    }

    /// A directory that lives as long as the database (SQLite only), or a fresh one.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        match &self.location {
            DatabaseLocation::Sqlite(path) => Some(path),
            DatabaseLocation::Postgres(_) => None,
        }
    }

    pub fn url(&self) -> String {
        match &self.location {
            DatabaseLocation::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseLocation::Postgres(url) => url.clone(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_postgres.take() {
            // Drop runs outside any runtime we may block on, so use a thread with its own.
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}
