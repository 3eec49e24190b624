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
