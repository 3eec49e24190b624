//! The chat tables on both backends: conversations, chat sessions, messages, safety events, limits.

use onda::storage::testing::{Backend, TestDatabase};
use onda::storage::{
    ChatSessionRow, ChildLimitsRow, ChildRow, MessageRow, NewUser, SafetyEventRow, StorageError, Store,
    new_id,
};

use crate::backend_tests;

backend_tests!(
    a_conversation_per_session_and_child,
    messages_are_numbered_and_paged,
    a_safety_event_commits_with_its_message,
    chat_sessions_are_touched_and_found_by_day,
    limits_are_upserted_and_checked,
    deleting_a_child_deletes_their_chat,
);

const NOW: i64 = 1_790_000_000_000;

async fn open_with_child(backend: Backend) -> (TestDatabase, Store, ChildRow) {
    let db = TestDatabase::new(backend).await;
    let store = Store::open(&db.location).await.expect("store opens");
    let family = new_id();
    store
        .create_family_with_parent(
            &family,
            false,
            &NewUser {
                id: &new_id(),
                family_id: Some(&family),
                email: "p@example.com",
                password_hash: "x",
                role: "parent",
                email_verified_at: None,
                created_at: NOW,
            },
        )
        .await
        .expect("family");
    let child = ChildRow {
        id: new_id(),
        family_id: family,
        display_name: "Mia".into(),
        age: 7,
        persona: "robot".into(),
        created_at: NOW,
    };
    store.insert_child(&child).await.expect("child");
    (db, store, child)
}

fn message(conversation: &str, child: &str, role: &str, text: &str) -> MessageRow {
    MessageRow {
        id: new_id(),
        conversation_id: conversation.into(),
        child_id: child.into(),
        seq: 0,
        role: role.into(),
        text: text.into(),
        level: 0,
        verdict: "{\"level\":0}".into(),
        provider: (role == "assistant").then(|| "local".to_string()),
        model: None,
        first_token_ms: Some(12),
        total_ms: Some(40),
        whisper: true,
        created_at: NOW,
    }
}

fn event(child: &ChildRow, conversation: &str, message_id: &str, kind: &str) -> SafetyEventRow {
    SafetyEventRow {
        id: new_id(),
        family_id: child.family_id.clone(),
        child_id: child.id.clone(),
        conversation_id: Some(conversation.into()),
        message_id: Some(message_id.into()),
        level: 4,
        kind: kind.into(),
        categories: "[\"self_harm\"]".into(),
        reasons: "[\"talks about hurting themselves\"]".into(),
        created_at: NOW,
        acknowledged_at: None,
    }
}

async fn a_conversation_per_session_and_child(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    let first = store
        .conversation_for_session(&new_id(), "key-a", &child.id, &child.family_id, NOW)
        .await
        .expect("c");
    let again = store
        .conversation_for_session(&new_id(), "key-a", &child.id, &child.family_id, NOW + 5)
        .await
        .expect("c");
    assert_eq!(first, again, "the same session and child share one conversation");
    assert_eq!((first.started_at, first.summary.as_str(), first.summarized_through), (NOW, "", 0));
    let other = store
        .conversation_for_session(&new_id(), "key-b", &child.id, &child.family_id, NOW)
        .await
        .expect("c");
    assert_ne!(other.id, first.id);
    assert_eq!(store.find_conversation("key-c", &child.id).await.expect("find"), None);
    store.set_conversation_summary(&first.id, "dogs | cats", 4).await.expect("summary");
    let read = store.conversation_by_id(&first.id).await.expect("read").expect("exists");
    assert_eq!((read.summary.as_str(), read.summarized_through), ("dogs | cats", 4));
}

async fn messages_are_numbered_and_paged(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    let c =
        store.conversation_for_session(&new_id(), "k", &child.id, &child.family_id, NOW).await.expect("c");
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = message(&c.id, &child.id, if i % 2 == 0 { "child" } else { "assistant" }, &format!("m{i}"));
        store.insert_message(&m).await.expect("insert");
        ids.push(m.id);
    }
    let all = store.messages_after(&c.id, 0).await.expect("all");
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(all[1].provider.as_deref(), Some("local"));
    assert!(all[0].whisper);
    assert_eq!(all[4].first_token_ms, Some(12));
    assert_eq!(store.messages_after(&c.id, 3).await.expect("after").len(), 2);
    let page = store.messages_before(&c.id, i64::MAX, 2).await.expect("page");
    assert_eq!(page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m4", "m3"]);
    let page = store.messages_before(&c.id, 2, 10).await.expect("page");
    assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
    let read = store.message_by_id(&ids[2]).await.expect("read").expect("exists");
    assert_eq!((read.seq, read.text.as_str()), (3, "m2"));
    // A role or level outside the schema is refused.
    let mut bad = message(&c.id, &child.id, "parent", "x");
    assert!(matches!(store.insert_message(&bad).await, Err(StorageError::Conflict(_))));
    bad.role = "child".into();
    bad.level = 7;
    assert!(matches!(store.insert_message(&bad).await, Err(StorageError::Conflict(_))));
}

async fn a_safety_event_commits_with_its_message(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    let c =
        store.conversation_for_session(&new_id(), "k", &child.id, &child.family_id, NOW).await.expect("c");
    let m = message(&c.id, &child.id, "child", "[redacted]");
    let e = event(&child, &c.id, &m.id, "crisis");
    store.insert_message_with_event(&m, Some(&e)).await.expect("insert");
    let events = store.safety_events_of_child(&child.id, 10).await.expect("events");
    assert_eq!(events, vec![e.clone()]);
    // A bad event rolls its message back too.
    let m2 = message(&c.id, &child.id, "child", "second");
    let mut bad = event(&child, &c.id, &m2.id, "gossip");
    assert!(matches!(store.insert_message_with_event(&m2, Some(&bad)).await, Err(StorageError::Conflict(_))));
    assert!(store.message_by_id(&m2.id).await.expect("read").is_none(), "rolled back");
    bad.kind = "unsafe_generation".into();
    bad.created_at = NOW + 1;
    store.insert_safety_event(&bad).await.expect("event alone");
    assert_eq!(store.unacknowledged_safety_events(&child.family_id).await.expect("open").len(), 2);
    assert!(store.acknowledge_safety_event(&child.family_id, &e.id, NOW + 10).await.expect("ack"));
    assert!(!store.acknowledge_safety_event(&child.family_id, &e.id, NOW + 20).await.expect("again"));
    assert!(!store.acknowledge_safety_event("another-family", &bad.id, NOW).await.expect("other"));
    let open = store.unacknowledged_safety_events(&child.family_id).await.expect("open");
    assert_eq!(open.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["unsafe_generation"]);
    let newest = store.safety_events_of_child(&child.id, 1).await.expect("events");
    assert_eq!(newest[0].id, bad.id);
    let acked = store.safety_events_of_child(&child.id, 10).await.expect("events");
    assert_eq!(acked[1].acknowledged_at, Some(NOW + 10));
}

async fn chat_sessions_are_touched_and_found_by_day(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    let c =
        store.conversation_for_session(&new_id(), "k", &child.id, &child.family_id, NOW).await.expect("c");
    let old = ChatSessionRow {
        id: new_id(),
        conversation_id: c.id.clone(),
        child_id: child.id.clone(),
        started_at: NOW - 86_400_000,
        last_active_at: NOW - 86_000_000,
        break_reminded: true,
        ai_disclosed: true,
    };
    store.insert_chat_session(&old).await.expect("old");
    let s = ChatSessionRow { id: new_id(), started_at: NOW, last_active_at: NOW, ..old.clone() };
    let s = ChatSessionRow { break_reminded: false, ai_disclosed: false, ..s };
    store.insert_chat_session(&s).await.expect("new");
    assert_eq!(store.latest_chat_session(&c.id).await.expect("latest"), Some(s.clone()));
    store.touch_chat_session(&s, NOW + 60_000, false, true).await.expect("touch");
    store.touch_chat_session(&s, NOW + 120_000, true, false).await.expect("touch");
    let read = store.latest_chat_session(&c.id).await.expect("latest").expect("exists");
    assert_eq!((read.last_active_at, read.break_reminded, read.ai_disclosed), (NOW + 120_000, true, true));
    let conversation = store.conversation_by_id(&c.id).await.expect("c").expect("exists");
    assert_eq!(conversation.last_message_at, NOW + 120_000);
    let today = store.chat_sessions_of_child_since(&child.id, NOW - 3_600_000).await.expect("today");
    assert_eq!(today.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [s.id.as_str()]);
    assert_eq!(store.chat_sessions_of_child_since(&child.id, 0).await.expect("all").len(), 2);
}

async fn limits_are_upserted_and_checked(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    assert_eq!(store.child_limits(&child.id).await.expect("none"), None);
    let mut limits = ChildLimitsRow {
        child_id: child.id.clone(),
        daily_limit_minutes: Some(45),
        quiet_hours_start: Some(21 * 60),
        quiet_hours_end: Some(7 * 60),
        utc_offset_minutes: -300,
        updated_at: NOW,
    };
    store.upsert_child_limits(&limits).await.expect("insert");
    assert_eq!(store.child_limits(&child.id).await.expect("read"), Some(limits.clone()));
    limits.daily_limit_minutes = None;
    limits.quiet_hours_start = None;
    limits.quiet_hours_end = None;
    limits.updated_at = NOW + 1;
    store.upsert_child_limits(&limits).await.expect("update");
    assert_eq!(store.child_limits(&child.id).await.expect("read"), Some(limits.clone()));
    limits.utc_offset_minutes = 5000;
    assert!(matches!(store.upsert_child_limits(&limits).await, Err(StorageError::Conflict(_))));
    limits.utc_offset_minutes = 0;
    limits.child_id = new_id();
    assert!(
        matches!(store.upsert_child_limits(&limits).await, Err(StorageError::Conflict(_))),
        "unknown child"
    );
}

async fn deleting_a_child_deletes_their_chat(backend: Backend) {
    let (_db, store, child) = open_with_child(backend).await;
    let c =
        store.conversation_for_session(&new_id(), "k", &child.id, &child.family_id, NOW).await.expect("c");
    let m = message(&c.id, &child.id, "child", "hello");
    store
        .insert_message_with_event(&m, Some(&event(&child, &c.id, &m.id, "redirect")))
        .await
        .expect("insert");
    store
        .upsert_child_limits(&ChildLimitsRow {
            child_id: child.id.clone(),
            updated_at: NOW,
            ..Default::default()
        })
        .await
        .expect("limits");
    store.delete_child(&child.family_id, &child.id).await.expect("delete");
    assert_eq!(store.conversation_by_id(&c.id).await.expect("c"), None);
    assert_eq!(store.message_by_id(&m.id).await.expect("m"), None);
    assert!(store.safety_events_of_child(&child.id, 10).await.expect("events").is_empty());
    assert_eq!(store.child_limits(&child.id).await.expect("limits"), None);
}
