//! The audit log: logins, consent, PIN failures, settings changes. Never a child's message text.

use super::{StorageResult, Store, new_id, with_pool, with_writer};

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub actor_user_id: Option<String>,
    pub family_id: Option<String>,
    pub action: String,
    pub detail: String,
    pub ip: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditEntry<'a> {
    pub actor_user_id: Option<&'a str>,
    pub family_id: Option<&'a str>,
    pub action: &'a str,
    pub detail: serde_json::Value,
    pub ip: Option<&'a str>,
}

impl Store {
    pub async fn append_audit(&self, entry: &AuditEntry<'_>, now: i64) -> StorageResult<()> {
        let detail = if entry.detail.is_null() { "{}".to_string() } else { entry.detail.to_string() };
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO audit_log (id, at, actor_user_id, family_id, action, detail, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(now)
        .bind(entry.actor_user_id)
        .bind(entry.family_id)
        .bind(entry.action)
        .bind(&detail)
        .bind(entry.ip)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// The newest entries of a family's audit log.
    pub async fn audit_of_family(&self, family_id: &str, limit: i64) -> StorageResult<Vec<AuditRow>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, at, actor_user_id, family_id, action, detail, ip FROM audit_log \
             WHERE family_id = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(family_id)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Whether the family's audit log holds at least one entry of this kind.
    pub async fn family_has_audit_action(&self, family_id: &str, action: &str) -> StorageResult<bool> {
        let found: Option<String> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM audit_log WHERE family_id = $1 AND action = $2 LIMIT 1",
        )
        .bind(family_id)
        .bind(action)
        .fetch_optional(pool)
        .await?);
        Ok(found.is_some())
    }

    /// The newest entries of one kind, across families (operators and tests).
    pub async fn audit_by_action(&self, action: &str, limit: i64) -> StorageResult<Vec<AuditRow>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, at, actor_user_id, family_id, action, detail, ip FROM audit_log \
             WHERE action = $1 ORDER BY at DESC, id LIMIT $2",
        )
        .bind(action)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }
}
