//! Family-level writes that are not plain CRUD: ending kid-mode sessions, counting PIN attempts
//! atomically, and finding the demo family.

use super::{StorageResult, Store, with_pool, with_writer};

impl Store {
    /// Signs out every browser of the family that is in kid mode (consent was revoked): the session
    /// is deleted rather than returned to the parent, so a child never lands in the parent's dashboard.
    pub async fn end_kid_sessions_of_family(&self, family_id: &str) -> StorageResult<u64> {
        Ok(with_writer!(self, pool => sqlx::query(
            "DELETE FROM sessions WHERE kid_child_id IS NOT NULL \
             AND user_id IN (SELECT id FROM users WHERE family_id = $1)",
        )
        .bind(family_id)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// Signs out every browser in kid mode for this child (the profile was deleted).
    pub async fn end_kid_sessions_of_child(&self, child_id: &str) -> StorageResult<u64> {
        Ok(with_writer!(self, pool => sqlx::query("DELETE FROM sessions WHERE kid_child_id = $1")
            .bind(child_id)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Counts one PIN attempt before the PIN is checked, so simultaneous guesses cannot exceed the
    /// limit. Returns the attempt's number (1 for the first since the last success or expired lock),
    /// or `None` while the PIN is locked.
    pub async fn reserve_pin_attempt(&self, family_id: &str, now: i64) -> StorageResult<Option<i64>> {
        let attempts: Option<i64> = with_writer!(self, pool => sqlx::query_scalar(
            "UPDATE families SET \
               pin_failed_attempts = CASE WHEN pin_locked_until IS NOT NULL AND pin_locked_until <= $2 \
                                          THEN 1 ELSE pin_failed_attempts + 1 END, \
               pin_locked_until = CASE WHEN pin_locked_until IS NOT NULL AND pin_locked_until <= $2 \
                                       THEN NULL ELSE pin_locked_until END \
             WHERE id = $1 AND (pin_locked_until IS NULL OR pin_locked_until <= $2) \
             RETURNING pin_failed_attempts",
        )
        .bind(family_id)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        Ok(attempts)
    }

    /// Locks the PIN until `until` unless a lock is already in place; returns the lock in force.
    pub async fn lock_pin(&self, family_id: &str, until: i64) -> StorageResult<i64> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE families SET pin_locked_until = $2 WHERE id = $1 AND pin_locked_until IS NULL",
        )
        .bind(family_id)
        .bind(until)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(self.pin_state(family_id).await?.pin_locked_until.unwrap_or(until))
    }

    /// The demo family, when `seed --demo` created one.
    pub async fn demo_family_id(&self) -> StorageResult<Option<String>> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM families WHERE is_demo = TRUE ORDER BY created_at, id LIMIT 1",
        )
        .fetch_optional(pool)
        .await?))
    }
}
