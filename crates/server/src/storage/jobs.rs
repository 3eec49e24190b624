//! A persisted queue of delayed work (the "email plus" confirmation, later summaries and alerts).
//! Claiming takes a lease, so several replicas never run the same job at once.

use super::{Pool, StorageResult, Store, new_id, with_pool, with_writer};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub run_at: i64,
    pub attempts: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobState {
    pub id: String,
    pub kind: String,
    pub run_at: i64,
    pub attempts: i64,
    pub done_at: Option<i64>,
    pub last_error: Option<String>,
}

impl Store {
    pub async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        run_at: i64,
        now: i64,
    ) -> StorageResult<String> {
        let id = new_id();
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO jobs (id, kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(kind)
        .bind(payload.to_string())
        .bind(run_at)
        .bind(now)
        .execute(pool)
        .await?.rows_affected());
        Ok(id)
    }

    /// Claims the oldest due job that no one holds, leasing it until `now + lease_ms`.
    pub async fn claim_due_job(&self, now: i64, lease_ms: i64) -> StorageResult<Option<JobRow>> {
        // PostgreSQL skips rows another replica has locked; SQLite has a single writer, so the
        // UPDATE ... WHERE id = (SELECT ...) is already atomic there.
        let lock = match self.pool() {
            Pool::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE jobs SET locked_until = $2, attempts = attempts + 1 WHERE id = (\
               SELECT id FROM jobs WHERE done_at IS NULL AND run_at <= $1 \
               AND (locked_until IS NULL OR locked_until <= $1) ORDER BY run_at, id LIMIT 1 {lock}) \
             RETURNING id, kind, payload, run_at, attempts"
        );
        Ok(with_writer!(self, pool => sqlx::query_as(&sql)
            .bind(now)
            .bind(now + lease_ms)
            .fetch_optional(pool)
            .await?))
    }

    pub async fn complete_job(&self, job_id: &str, now: i64) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query("UPDATE jobs SET done_at = $2, locked_until = NULL WHERE id = $1")
            .bind(job_id)
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(())
    }

    /// Records a failure; the job runs again at `retry_at`, or never when `retry_at` is `None`.
    pub async fn fail_job(
        &self,
        job_id: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "UPDATE jobs SET last_error = $2, locked_until = NULL, \
             run_at = COALESCE($3, run_at), done_at = CASE WHEN $3 IS NULL THEN $4 ELSE NULL END WHERE id = $1",
        )
        .bind(job_id)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// One job's bookkeeping, for operators and tests.
    pub async fn job_state(&self, job_id: &str) -> StorageResult<Option<JobState>> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, run_at, attempts, done_at, last_error FROM jobs WHERE id = $1",
        )
        .bind(job_id)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn pending_job_count(&self) -> StorageResult<i64> {
        Ok(with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE done_at IS NULL")
            .fetch_one(pool)
            .await?))
    }
}
