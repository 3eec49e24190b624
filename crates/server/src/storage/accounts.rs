//! Families, user accounts, browser sessions, one-time email tokens and the family PIN.

use super::{StorageResult, Store, with_pool, with_writer};

/// Inserts a user through any executor (a pool or a transaction) of either backend.
macro_rules! insert_user {
    ($executor:expr, $user:expr) => {{
        let user = $user;
        sqlx::query(
            "INSERT INTO users (id, family_id, email, password_hash, role, email_verified_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id)
        .bind(user.family_id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.role)
        .bind(user.email_verified_at)
        .bind(user.created_at)
        .execute($executor)
        .await?
        .rows_affected()
    }};
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub family_id: Option<String>,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub kid_child_id: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EmailTokenRow {
    pub user_id: String,
    pub purpose: String,
    pub subject_id: Option<String>,
}

#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct PinState {
    pub pin_hash: Option<String>,
    pub pin_failed_attempts: i64,
    pub pin_locked_until: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub family_id: Option<&'a str>,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub email_verified_at: Option<i64>,
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, family_id, email, password_hash, role, email_verified_at, created_at";

impl Store {
    /// Creates a family and its first parent in one transaction.
    pub async fn create_family_with_parent(
        &self,
        family_id: &str,
        is_demo: bool,
        parent: &NewUser<'_>,
    ) -> StorageResult<()> {
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO families (id, is_demo, created_at) VALUES ($1, $2, $3)")
                .bind(family_id)
                .bind(is_demo)
                .bind(parent.created_at)
                .execute(&mut *tx)
                .await?;
            insert_user!(&mut *tx, parent);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Creates an account that belongs to no family (moderators and administrators).
    pub async fn create_staff_user(&self, user: &NewUser<'_>) -> StorageResult<()> {
        with_writer!(self, pool => insert_user!(pool, user));
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> StorageResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(email).fetch_optional(pool).await?))
    }

    pub async fn user_by_id(&self, id: &str) -> StorageResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?))
    }

    pub async fn set_email_verified(&self, user_id: &str, now: i64) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2) WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// Replaces the password and ends every session of the account.
    pub async fn set_password(&self, user_id: &str, password_hash: &str) -> StorageResult<()> {
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// The live session with this token, and its user.
    pub async fn session_with_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> StorageResult<Option<(SessionRow, UserRow)>> {
        let session: Option<SessionRow> = with_pool!(self, pool => sqlx::query_as(
            "SELECT token_hash, user_id, kid_child_id, created_at, last_seen_at, expires_at \
             FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?);
        let Some(session) = session else { return Ok(None) };
        Ok(self.user_by_id(&session.user_id).await?.map(|user| (session, user)))
    }

    /// Slides the expiry of an active session forward.
    pub async fn touch_session(&self, token_hash: &str, now: i64, expires_at: i64) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE token_hash = $1",
        )
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await?.rows_affected());
        Ok(())
    }

    /// Puts a browser session into kid mode for a child, or (with `None`) back to the parent.
    pub async fn set_session_kid_mode(&self, token_hash: &str, child_id: Option<&str>) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query("UPDATE sessions SET kid_child_id = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(child_id)
            .execute(pool)
            .await?.rows_affected());
        Ok(())
    }

    pub async fn insert_email_token(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        subject_id: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, subject_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose)
        .bind(subject_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// Marks a one-time token used and returns it, if it exists, has this purpose, is unused and unexpired.
    pub async fn consume_email_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> StorageResult<Option<EmailTokenRow>> {
        Ok(with_writer!(self, pool => sqlx::query_as(
            "UPDATE email_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id, purpose, subject_id",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(pool)
        .await?))
    }

    /// A one-time token as [`Store::consume_email_token`] would find it, without using it up: for a
    /// page that shows what a link will do before the visitor confirms.
    pub async fn peek_email_token(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> StorageResult<Option<EmailTokenRow>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT user_id, purpose, subject_id FROM email_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn pin_state(&self, family_id: &str) -> StorageResult<PinState> {
        let state: Option<PinState> = with_pool!(self, pool => sqlx::query_as(
            "SELECT pin_hash, pin_failed_attempts, pin_locked_until FROM families WHERE id = $1",
        )
        .bind(family_id)
        .fetch_optional(pool)
        .await?);
        state.ok_or(super::StorageError::NotFound)
    }

    /// Sets a new PIN and clears any lockout.
    pub async fn set_pin(&self, family_id: &str, pin_hash: &str) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE families SET pin_hash = $2, pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = $1",
        )
        .bind(family_id)
        .bind(pin_hash)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    pub async fn record_pin_attempt(
        &self,
        family_id: &str,
        failed_attempts: i64,
        locked_until: Option<i64>,
    ) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE families SET pin_failed_attempts = $2, pin_locked_until = $3 WHERE id = $1",
        )
        .bind(family_id)
        .bind(failed_attempts)
        .bind(locked_until)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }
}
