//! `TestApp` (a running Onda on 127.0.0.1:0 with its own data directory, database and clock) and the
//! other helpers live in `onda::testing`, shared with the chat benchmark; this adds the test macro.

pub use onda::testing::{PASSWORD, SseReader, TestApp, assert_problem};

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
