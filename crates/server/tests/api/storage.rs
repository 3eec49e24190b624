//! The storage interface itself, on both backends: constraints, one-time tokens, sessions, job leases.

use onda::storage::testing::{Backend, TestDatabase};
use onda::storage::{ChildRow, DatabaseLocation, NewUser, StorageError, Store, new_id};
use serde_json::json;

use crate::backend_tests;

backend_tests!(
    constraints_become_conflicts,
    email_tokens_work_once_and_expire,
    sessions_expire,
    jobs_are_leased_retried_and_completed,
    migrations_are_idempotent,
    checkpoints_copy_the_log_off_the_write_path,
);

const NOW: i64 = 1_790_000_000_000;

async fn open(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.location).await.expect("store opens");
    (db, store)
}

async fn family_with_parent(store: &Store, email: &str) -> (String, String) {
    let family = new_id();
    let user = new_id();
    store
        .create_family_with_parent(
            &family,
            false,
            &NewUser {
                id: &user,
                family_id: Some(&family),
                email,
                password_hash: "x",
                role: "parent",
                email_verified_at: None,
                created_at: NOW,
            },
        )
        .await
        .expect("family created");
    (family, user)
}

async fn constraints_become_conflicts(backend: Backend) {
    let (_db, store) = open(backend).await;
    let (family, _) = family_with_parent(&store, "a@example.com").await;
    let again = store
        .create_family_with_parent(
            &new_id(),
            false,
            &NewUser {
                id: &new_id(),
                family_id: None,
                email: "a@example.com",
                password_hash: "x",
                role: "parent",
                email_verified_at: None,
                created_at: NOW,
            },
        )
        .await;
    assert!(matches!(again, Err(StorageError::Conflict(_))), "duplicate email: {again:?}");
    // The failed transaction left no orphan family behind.
    assert!(store.has_real_families().await.expect("count"));
    let mut child = ChildRow {
        id: new_id(),
        family_id: family.clone(),
        display_name: "Mia".into(),
        age: 2,
        persona: "raccoon".into(),
        created_at: NOW,
    };
    assert!(matches!(store.insert_child(&child).await, Err(StorageError::Conflict(_))));
    child.age = 7;
    child.persona = "dragon".into();
    assert!(matches!(store.insert_child(&child).await, Err(StorageError::Conflict(_))));
    child.persona = "raccoon".into();
    store.insert_child(&child).await.expect("valid child");
    assert_eq!(store.children_of_family(&family).await.expect("list").len(), 1);
    assert!(matches!(store.delete_child("another-family", &child.id).await, Err(StorageError::NotFound)));
}

async fn email_tokens_work_once_and_expire(backend: Backend) {
    let (_db, store) = open(backend).await;
    let (_, user) = family_with_parent(&store, "t@example.com").await;
    store.insert_email_token("h1", &user, "verify_email", None, NOW, NOW + 1000).await.expect("token");
    assert!(store.consume_email_token("h1", "reset_password", NOW).await.expect("query").is_none());
    let row = store.consume_email_token("h1", "verify_email", NOW).await.expect("query").expect("token");
    assert_eq!(row.user_id, user);
    assert!(store.consume_email_token("h1", "verify_email", NOW).await.expect("query").is_none());
    store.insert_email_token("h2", &user, "verify_email", None, NOW, NOW + 1000).await.expect("token");
    assert!(store.consume_email_token("h2", "verify_email", NOW + 1000).await.expect("query").is_none());
}

async fn sessions_expire(backend: Backend) {
    let (_db, store) = open(backend).await;
    let (_, user) = family_with_parent(&store, "s@example.com").await;
    store.insert_session("s1", &user, NOW, NOW + 1000).await.expect("session");
    assert!(store.session_with_user("s1", NOW + 999).await.expect("query").is_some());
    assert!(store.session_with_user("s1", NOW + 1000).await.expect("query").is_none());
    store.touch_session("s1", NOW + 500, NOW + 5000).await.expect("touch");
    assert!(store.session_with_user("s1", NOW + 4000).await.expect("query").is_some());
    store.delete_session("s1").await.expect("delete");
    assert!(store.session_with_user("s1", NOW).await.expect("query").is_none());
}

async fn jobs_are_leased_retried_and_completed(backend: Backend) {
    let (_db, store) = open(backend).await;
    let id = store.enqueue_job("test", &json!({ "n": 1 }), NOW + 100, NOW).await.expect("enqueue");
    assert!(store.claim_due_job(NOW, 1000).await.expect("claim").is_none(), "not due yet");
    let job = store.claim_due_job(NOW + 100, 1000).await.expect("claim").expect("due");
    assert_eq!(job.id, id);
    assert_eq!(job.attempts, 1);
    assert!(store.claim_due_job(NOW + 200, 1000).await.expect("claim").is_none(), "leased");
    store.fail_job(&id, "boom", Some(NOW + 5000), NOW + 300).await.expect("fail");
    assert!(store.claim_due_job(NOW + 400, 1000).await.expect("claim").is_none(), "waiting to retry");
    let job = store.claim_due_job(NOW + 5000, 1000).await.expect("claim").expect("retried");
    assert_eq!(job.attempts, 2);
    store.complete_job(&id, NOW + 5001).await.expect("complete");
    assert_eq!(store.pending_job_count().await.expect("count"), 0);
    // A lease that runs out lets another worker take the job.
    let id = store.enqueue_job("test", &json!({}), NOW, NOW).await.expect("enqueue");
    store.claim_due_job(NOW, 1000).await.expect("claim").expect("due");
    let again = store.claim_due_job(NOW + 1000, 1000).await.expect("claim").expect("lease expired");
    assert_eq!(again.id, id);
    // Giving up for good ends the job.
    store.fail_job(&id, "permanent", None, NOW + 1001).await.expect("fail");
    assert_eq!(store.pending_job_count().await.expect("count"), 0);
}

async fn migrations_are_idempotent(backend: Backend) {
    let (db, store) = open(backend).await;
    family_with_parent(&store, "m@example.com").await;
    store.close().await;
    let reopened = Store::open(&db.location).await.expect("migrations run again cleanly");
    assert!(reopened.has_real_families().await.expect("data kept"));
}

async fn checkpoints_copy_the_log_off_the_write_path(backend: Backend) {
    let (db, store) = open(backend).await;
    for i in 0..20 {
        family_with_parent(&store, &format!("c{i}@example.com")).await;
    }
    let checkpointed = store.checkpoint().await.expect("checkpoint runs");
    match backend {
        Backend::Sqlite => {
            let (log, copied) = checkpointed.expect("SQLite has a log to copy");
            assert!(log > 0, "the writes went to the log");
            assert_eq!(copied, log, "nothing else reads, so the whole log is copied");
            // The writer's own checkpoint is only a backstop: it waits for a much fuller log.
            let onda::storage::Pool::Sqlite(writer) = store.writer() else { panic!("a SQLite writer") };
            let pages: i64 =
                sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(writer).await.expect("pragma");
            assert!(pages >= 10_000, "{pages}");
        }
        Backend::Postgres => assert_eq!(checkpointed, None),
    }
    store.close().await;
    let reopened = Store::open(&db.location).await.expect("reopens");
    assert!(reopened.has_real_families().await.expect("every write kept"));
}

#[test]
fn database_urls_are_parsed_strictly() {
    assert_eq!(
        DatabaseLocation::parse("sqlite://./data/onda.db"),
        Ok(DatabaseLocation::Sqlite("./data/onda.db".into()))
    );
    assert!(matches!(DatabaseLocation::parse("postgres://u@h/db"), Ok(DatabaseLocation::Postgres(_))));
    assert!(DatabaseLocation::parse("./onda.db").is_err(), "a bare path is refused");
    assert!(DatabaseLocation::parse("sqlite::memory:").is_err());
    assert!(DatabaseLocation::parse("mysql://x").is_err());
}
