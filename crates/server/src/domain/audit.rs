//! Writes to the audit log, honouring `PRIVACY_AUDIT_ENABLED`. An audit failure is logged, never
//! allowed to fail the action it describes.

use super::Context;
use crate::storage::AuditEntry;

pub async fn record(ctx: &Context, entry: AuditEntry<'_>) {
    if !ctx.config.privacy_audit_enabled {
        return;
    }
    if let Err(err) = ctx.store.append_audit(&entry, ctx.now()).await {
        tracing::error!(error = %err, action = entry.action, "could not write the audit log");
    }
}

/// One audit log entry as a parent sees it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    pub actor_user_id: Option<String>,
    pub action: String,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

/// The newest `limit` entries of a family's audit log, newest first.
pub async fn family_log(ctx: &Context, family_id: &str, limit: i64) -> super::DomainResult<Vec<AuditView>> {
    let rows = ctx.store.audit_of_family(family_id, limit.clamp(1, 1000)).await?;
    Ok(rows
        .into_iter()
        .map(|row| AuditView {
            id: row.id,
            at: crate::clock::rfc3339(row.at),
            actor_user_id: row.actor_user_id,
            action: row.action,
            detail: serde_json::from_str(&row.detail).unwrap_or(serde_json::Value::Null),
            ip: row.ip,
        })
        .collect())
}
