//! Buddy chat: conversations, chat sessions (what the session limit counts), messages with their verdicts,
//! safety events for parents, and the per-child limits a parent sets. Message text is stored only as the
//! (redacted) message itself; verdicts carry levels, actions and category scores, never text.

use super::{StorageError, StorageResult, Store, with_pool, with_writer};

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversationRow {
    pub id: String,
    pub child_id: String,
    pub family_id: String,
    pub session_key: String,
    pub started_at: i64,
    pub last_message_at: i64,
    pub summary: String,
    pub summarized_through: i64,
}

const CONVERSATION_COLUMNS: &str =
    "id, child_id, family_id, session_key, started_at, last_message_at, summary, summarized_through";

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChatSessionRow {
    pub id: String,
    pub conversation_id: String,
    pub child_id: String,
    pub started_at: i64,
    pub last_active_at: i64,
    pub break_reminded: bool,
    pub ai_disclosed: bool,
}

const CHAT_SESSION_COLUMNS: &str =
    "id, conversation_id, child_id, started_at, last_active_at, break_reminded, ai_disclosed";

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MessageRow {
    pub id: String,
    pub conversation_id: String,
    pub child_id: String,
    /// Order within the conversation, from 1.
    pub seq: i64,
    /// `child` or `assistant`.
    pub role: String,
    pub text: String,
    pub level: i64,
    /// JSON: level, action, categories, PII kinds. Never text.
    pub verdict: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub first_token_ms: Option<i64>,
    pub total_ms: Option<i64>,
    pub whisper: bool,
    pub created_at: i64,
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, child_id, seq, role, text, level, verdict, provider, model, \
                               first_token_ms, total_ms, whisper, created_at";

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SafetyEventRow {
    pub id: String,
    pub family_id: String,
    pub child_id: String,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub level: i64,
    /// `input_blocked`, `crisis`, `unsafe_generation` or `redirect`.
    pub kind: String,
    /// JSON array of category names.
    pub categories: String,
    /// JSON array of short reasons a parent can read.
    pub reasons: String,
    pub created_at: i64,
    pub acknowledged_at: Option<i64>,
}

const EVENT_COLUMNS: &str = "id, family_id, child_id, conversation_id, message_id, level, kind, categories, \
                             reasons, created_at, acknowledged_at";

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct ChildLimitsRow {
    pub child_id: String,
    pub daily_limit_minutes: Option<i64>,
    pub quiet_hours_start: Option<i64>,
    pub quiet_hours_end: Option<i64>,
    pub utc_offset_minutes: i64,
    pub updated_at: i64,
}

macro_rules! insert_message {
    ($executor:expr, $m:expr) => {
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, child_id, seq, role, text, level, verdict, provider, \
             model, first_token_ms, total_ms, whisper, created_at) \
             VALUES ($1, $2, $3, \
             (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = $2), \
             $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&$m.id)
        .bind(&$m.conversation_id)
        .bind(&$m.child_id)
        .bind(&$m.role)
        .bind(&$m.text)
        .bind($m.level)
        .bind(&$m.verdict)
        .bind(&$m.provider)
        .bind(&$m.model)
        .bind($m.first_token_ms)
        .bind($m.total_ms)
        .bind($m.whisper)
        .bind($m.created_at)
        .execute($executor)
        .await?
        .rows_affected()
    };
}

macro_rules! insert_event {
    ($executor:expr, $e:expr) => {
        sqlx::query(
            "INSERT INTO safety_events (id, family_id, child_id, conversation_id, message_id, level, kind, \
             categories, reasons, created_at, acknowledged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&$e.id)
        .bind(&$e.family_id)
        .bind(&$e.child_id)
        .bind(&$e.conversation_id)
        .bind(&$e.message_id)
        .bind($e.level)
        .bind(&$e.kind)
        .bind(&$e.categories)
        .bind(&$e.reasons)
        .bind($e.created_at)
        .bind($e.acknowledged_at)
        .execute($executor)
        .await?
        .rows_affected()
    };
}

impl Store {
    /// The conversation of this kid-mode session and child, created when there is none (two requests
    /// racing get the same one).
    pub async fn conversation_for_session(
        &self,
        new_id: &str,
        session_key: &str,
        child_id: &str,
        family_id: &str,
        now: i64,
    ) -> StorageResult<ConversationRow> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO conversations (id, child_id, family_id, session_key, started_at, last_message_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (session_key, child_id) DO NOTHING",
        )
        .bind(new_id)
        .bind(child_id)
        .bind(family_id)
        .bind(session_key)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.find_conversation(session_key, child_id).await?.ok_or(StorageError::NotFound)
    }

    pub async fn find_conversation(
        &self,
        session_key: &str,
        child_id: &str,
    ) -> StorageResult<Option<ConversationRow>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE session_key = $1 AND child_id = $2"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(session_key)
            .bind(child_id)
            .fetch_optional(pool)
            .await?))
    }

    pub async fn conversation_by_id(&self, id: &str) -> StorageResult<Option<ConversationRow>> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    /// Stores a new summary of the older turns, covering messages up to `through` (a seq).
    pub async fn set_conversation_summary(&self, id: &str, summary: &str, through: i64) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE conversations SET summary = $2, summarized_through = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(summary)
        .bind(through)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The newest chat session of a conversation.
    pub async fn latest_chat_session(&self, conversation_id: &str) -> StorageResult<Option<ChatSessionRow>> {
        let sql = format!(
            "SELECT {CHAT_SESSION_COLUMNS} FROM chat_sessions WHERE conversation_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT 1"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(conversation_id).fetch_optional(pool).await?))
    }

    pub async fn insert_chat_session(&self, row: &ChatSessionRow) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO chat_sessions (id, conversation_id, child_id, started_at, last_active_at, \
             break_reminded, ai_disclosed) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.id)
        .bind(&row.conversation_id)
        .bind(&row.child_id)
        .bind(row.started_at)
        .bind(row.last_active_at)
        .bind(row.break_reminded)
        .bind(row.ai_disclosed)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Marks activity in a chat session (and its conversation), and sets its flags once they are true.
    pub async fn touch_chat_session(
        &self,
        row: &ChatSessionRow,
        now: i64,
        break_reminded: bool,
        ai_disclosed: bool,
    ) -> StorageResult<()> {
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE chat_sessions SET last_active_at = $2, break_reminded = (break_reminded OR $3), \
                 ai_disclosed = (ai_disclosed OR $4) WHERE id = $1",
            )
            .bind(&row.id)
            .bind(now)
            .bind(break_reminded)
            .bind(ai_disclosed)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET last_message_at = $2 WHERE id = $1")
                .bind(&row.conversation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A child's chat sessions active at or after `since` (for the daily limit).
    pub async fn chat_sessions_of_child_since(
        &self,
        child_id: &str,
        since: i64,
    ) -> StorageResult<Vec<ChatSessionRow>> {
        let sql = format!(
            "SELECT {CHAT_SESSION_COLUMNS} FROM chat_sessions WHERE child_id = $1 AND last_active_at >= $2 \
             ORDER BY started_at, id"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(child_id).bind(since).fetch_all(pool).await?))
    }

    /// Stores a message (its `seq` is the next of its conversation; the value in `message` is ignored)
    /// and, in the same transaction, the safety event about it. Both are committed when this returns.
    pub async fn insert_message_with_event(
        &self,
        message: &MessageRow,
        event: Option<&SafetyEventRow>,
    ) -> StorageResult<()> {
        with_writer!(self, pool => match event {
            Some(event) => {
                let mut tx = pool.begin().await?;
                insert_message!(&mut *tx, message);
                insert_event!(&mut *tx, event);
                tx.commit().await?;
            }
            // One statement is atomic on its own: no transaction to open and commit around it.
            None => {
                insert_message!(pool, message);
            }
        });
        Ok(())
    }

    pub async fn insert_message(&self, message: &MessageRow) -> StorageResult<()> {
        self.insert_message_with_event(message, None).await
    }

    pub async fn insert_safety_event(&self, event: &SafetyEventRow) -> StorageResult<()> {
        with_writer!(self, pool => insert_event!(pool, event));
        Ok(())
    }

    pub async fn message_by_id(&self, id: &str) -> StorageResult<Option<MessageRow>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    /// Messages of a conversation with `seq > after`, oldest first.
    pub async fn messages_after(&self, conversation_id: &str, after: i64) -> StorageResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(conversation_id)
            .bind(after)
            .fetch_all(pool)
            .await?))
    }

    /// One page of a conversation, newest first: up to `limit` messages with `seq < before`.
    pub async fn messages_before(
        &self,
        conversation_id: &str,
        before: i64,
        limit: i64,
    ) -> StorageResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql)
            .bind(conversation_id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?))
    }

    /// A child's safety events, newest first.
    pub async fn safety_events_of_child(
        &self,
        child_id: &str,
        limit: i64,
    ) -> StorageResult<Vec<SafetyEventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM safety_events WHERE child_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(child_id).bind(limit).fetch_all(pool).await?))
    }

    /// A family's safety events not yet acknowledged, oldest first.
    pub async fn unacknowledged_safety_events(&self, family_id: &str) -> StorageResult<Vec<SafetyEventRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM safety_events WHERE family_id = $1 AND acknowledged_at IS NULL \
             ORDER BY created_at, id"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(family_id).fetch_all(pool).await?))
    }

    /// Acknowledges an event of this family; false when there is no such unacknowledged event.
    pub async fn acknowledge_safety_event(&self, family_id: &str, id: &str, now: i64) -> StorageResult<bool> {
        let changed = with_writer!(self, pool => sqlx::query(
            "UPDATE safety_events SET acknowledged_at = $3 \
             WHERE id = $1 AND family_id = $2 AND acknowledged_at IS NULL",
        )
        .bind(id)
        .bind(family_id)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(changed > 0)
    }

    pub async fn child_limits(&self, child_id: &str) -> StorageResult<Option<ChildLimitsRow>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT child_id, daily_limit_minutes, quiet_hours_start, quiet_hours_end, utc_offset_minutes, \
             updated_at FROM child_limits WHERE child_id = $1",
        )
        .bind(child_id)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn upsert_child_limits(&self, row: &ChildLimitsRow) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO child_limits (child_id, daily_limit_minutes, quiet_hours_start, quiet_hours_end, \
             utc_offset_minutes, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (child_id) DO UPDATE SET daily_limit_minutes = excluded.daily_limit_minutes, \
             quiet_hours_start = excluded.quiet_hours_start, quiet_hours_end = excluded.quiet_hours_end, \
             utc_offset_minutes = excluded.utc_offset_minutes, updated_at = excluded.updated_at",
        )
        .bind(&row.child_id)
        .bind(row.daily_limit_minutes)
        .bind(row.quiet_hours_start)
        .bind(row.quiet_hours_end)
        .bind(row.utc_offset_minutes)
        .bind(row.updated_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}

impl Store {
    /// Children with this display name (any case), in every family; the terminal chat finds a child so.
    pub async fn children_named(&self, name: &str) -> StorageResult<Vec<super::ChildRow>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, family_id, display_name, age, persona, created_at FROM children \
             WHERE LOWER(display_name) = LOWER($1) ORDER BY created_at, id",
        )
        .bind(name.trim())
        .fetch_all(pool)
        .await?))
    }
}
