//! Records of verifiable parental consent (COPPA) and of the separate consent to cloud AI.

use super::{StorageResult, Store, with_pool, with_writer};

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct ConsentRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub kind: String,
    pub method: String,
    pub granted_at: i64,
    pub ip: Option<String>,
    pub privacy_policy_version: String,
    pub terms_version: String,
    pub confirmation_sent_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const CONSENT_COLUMNS: &str = "id, family_id, user_id, kind, method, granted_at, ip, privacy_policy_version, \
                               terms_version, confirmation_sent_at, revoked_at";

impl Store {
    pub async fn insert_consent(&self, consent: &ConsentRow) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO consents (id, family_id, user_id, kind, method, granted_at, ip, \
             privacy_policy_version, terms_version, confirmation_sent_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&consent.id)
        .bind(&consent.family_id)
        .bind(&consent.user_id)
        .bind(&consent.kind)
        .bind(&consent.method)
        .bind(consent.granted_at)
        .bind(&consent.ip)
        .bind(&consent.privacy_policy_version)
        .bind(&consent.terms_version)
        .bind(consent.confirmation_sent_at)
        .bind(consent.revoked_at)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    /// The consents of a family that have not been revoked, newest first.
    pub async fn active_consents(&self, family_id: &str) -> StorageResult<Vec<ConsentRow>> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE family_id = $1 AND revoked_at IS NULL \
             ORDER BY granted_at DESC, id"
        );
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(family_id).fetch_all(pool).await?))
    }

    pub async fn consent_by_id(&self, consent_id: &str) -> StorageResult<Option<ConsentRow>> {
        let sql = format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(consent_id).fetch_optional(pool).await?))
    }

    /// Revokes every active consent of one kind for a family; returns how many were revoked.
    pub async fn revoke_consents(&self, family_id: &str, kind: &str, now: i64) -> StorageResult<u64> {
        Ok(with_writer!(self, pool => sqlx::query(
            "UPDATE consents SET revoked_at = $3 WHERE family_id = $1 AND kind = $2 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(kind)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    pub async fn mark_consent_confirmation_sent(&self, consent_id: &str, now: i64) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query("UPDATE consents SET confirmation_sent_at = $2 WHERE id = $1")
            .bind(consent_id)
            .bind(now)
            .execute(pool)
            .await?.rows_affected());
        Ok(())
    }
}
