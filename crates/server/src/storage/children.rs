//! Child profiles: a first name or nickname, an age and a buddy persona; nothing else about the child.

use super::{StorageResult, Store, with_pool, with_writer};

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct ChildRow {
    pub id: String,
    pub family_id: String,
    pub display_name: String,
    pub age: i64,
    pub persona: String,
    pub created_at: i64,
}

const CHILD_COLUMNS: &str = "id, family_id, display_name, age, persona, created_at";

impl Store {
    pub async fn insert_child(&self, child: &ChildRow) -> StorageResult<()> {
        with_writer!(self, pool => sqlx::query(
            "INSERT INTO children (id, family_id, display_name, age, persona, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&child.id)
        .bind(&child.family_id)
        .bind(&child.display_name)
        .bind(child.age)
        .bind(&child.persona)
        .bind(child.created_at)
        .execute(pool)
        .await?.rows_affected());
        Ok(())
    }

    pub async fn children_of_family(&self, family_id: &str) -> StorageResult<Vec<ChildRow>> {
        let sql =
            format!("SELECT {CHILD_COLUMNS} FROM children WHERE family_id = $1 ORDER BY created_at, id");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(family_id).fetch_all(pool).await?))
    }

    /// Any child by id, whatever its family: callers must check the family (see `domain::access`).
    pub async fn child_by_id(&self, child_id: &str) -> StorageResult<Option<ChildRow>> {
        let sql = format!("SELECT {CHILD_COLUMNS} FROM children WHERE id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(child_id).fetch_optional(pool).await?))
    }

    pub async fn update_child(&self, child: &ChildRow) -> StorageResult<()> {
        let result = with_writer!(self, pool => sqlx::query(
            "UPDATE children SET display_name = $3, age = $4, persona = $5 WHERE id = $1 AND family_id = $2",
        )
        .bind(&child.id)
        .bind(&child.family_id)
        .bind(&child.display_name)
        .bind(child.age)
        .bind(&child.persona)
        .execute(pool)
        .await?
        .rows_affected());
        if result == 0 {
            return Err(super::StorageError::NotFound);
        }
        Ok(())
    }

    pub async fn delete_child(&self, family_id: &str, child_id: &str) -> StorageResult<()> {
        let result = with_writer!(self, pool => sqlx::query("DELETE FROM children WHERE id = $1 AND family_id = $2")
            .bind(child_id)
            .bind(family_id)
            .execute(pool)
            .await?
            .rows_affected());
        if result == 0 {
            return Err(super::StorageError::NotFound);
        }
        Ok(())
    }
}
