//! "May this family act on this child?" answered in one place. A child of another family is reported
//! as not found, so ids cannot be probed.

use super::{Context, DomainError, DomainResult};
use crate::storage::ChildRow;

pub async fn child_of_family(ctx: &Context, family_id: &str, child_id: &str) -> DomainResult<ChildRow> {
    match ctx.store.child_by_id(child_id).await? {
        Some(child) if child.family_id == family_id => Ok(child),
        _ => Err(DomainError::NotFound),
    }
}
