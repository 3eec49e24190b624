//! Child profiles. Data minimisation: a first name or nickname, an age and a buddy persona, and nothing
//! else about the child is asked or kept.

use serde::{Deserialize, Serialize};

use super::{Context, DomainError, DomainResult, access, audit};
use crate::clock::rfc3339;
use crate::storage::{AuditEntry, ChildRow, new_id};

pub const MIN_AGE: i64 = 3;
pub const MAX_AGE: i64 = 17;
pub const NAME_MAX_CHARS: usize = 40;
/// A family can have this many child profiles.
pub const MAX_CHILDREN_PER_FAMILY: usize = 12;

/// The buddy a child chats with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persona {
    Raccoon,
    Jellyfish,
    Robot,
}

impl Persona {
    pub const ALL: [Persona; 3] = [Persona::Raccoon, Persona::Jellyfish, Persona::Robot];

    pub fn as_str(self) -> &'static str {
        match self {
            Persona::Raccoon => "raccoon",
            Persona::Jellyfish => "jellyfish",
            Persona::Robot => "robot",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value.trim().to_ascii_lowercase())
    }
}

/// A child profile as the parent pages and `/api/children` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildView {
    pub id: String,
    pub display_name: String,
    pub age: i64,
    pub persona: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&ChildRow> for ChildView {
    fn from(row: &ChildRow) -> Self {
        Self {
            id: row.id.clone(),
            display_name: row.display_name.clone(),
            age: row.age,
            persona: row.persona.clone(),
            created_at: rfc3339(row.created_at),
        }
    }
}

/// A new child profile. Unknown fields are refused: nothing else about a child is taken.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewChild {
    pub display_name: String,
    pub age: i64,
    pub persona: String,
}

/// Changes to a child profile; absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChildUpdate {
    pub display_name: Option<String>,
    pub age: Option<i64>,
    pub persona: Option<String>,
}

/// Trims and checks a first name or nickname: 1 to 40 characters, with a letter, and nothing that
/// looks like an email address or a phone number.
pub fn check_name(raw: &str) -> DomainResult<String> {
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let field = "displayName";
    if name.is_empty() {
        return Err(DomainError::invalid(field, "enter a first name or a nickname"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(DomainError::invalid(field, format!("use at most {NAME_MAX_CHARS} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "use letters, not control characters"));
    }
    if name.contains('@') {
        return Err(DomainError::invalid(
            field,
            "use a first name or a nickname, not an email address: Onda keeps nothing else about a child",
        ));
    }
    let digits = name.chars().filter(char::is_ascii_digit).count();
    if digits >= 5 {
        return Err(DomainError::invalid(
            field,
            "use a first name or a nickname, not a phone number: Onda keeps nothing else about a child",
        ));
    }
    if !name.chars().any(char::is_alphabetic) {
        return Err(DomainError::invalid(field, "use a first name or a nickname, with at least one letter"));
    }
    Ok(name)
}

pub fn check_age(age: i64) -> DomainResult<i64> {
    if !(MIN_AGE..=MAX_AGE).contains(&age) {
        return Err(DomainError::invalid(
            "age",
            format!("Onda is for children aged {MIN_AGE} to {MAX_AGE}; enter an age in that range"),
        ));
    }
    Ok(age)
}

pub fn check_persona(raw: &str) -> DomainResult<Persona> {
    Persona::parse(raw)
        .ok_or_else(|| DomainError::invalid("persona", "choose a buddy: raccoon, jellyfish or robot"))
}

pub async fn list(ctx: &Context, family_id: &str) -> DomainResult<Vec<ChildView>> {
    Ok(ctx.store.children_of_family(family_id).await?.iter().map(ChildView::from).collect())
}

/// One child of this family (404 for another family's child).
pub async fn get(ctx: &Context, family_id: &str, child_id: &str) -> DomainResult<ChildView> {
    Ok(ChildView::from(&access::child_of_family(ctx, family_id, child_id).await?))
}

pub async fn create(
    ctx: &Context,
    user_id: &str,
    family_id: &str,
    input: NewChild,
) -> DomainResult<ChildView> {
    let display_name = check_name(&input.display_name)?;
    let age = check_age(input.age)?;
    let persona = check_persona(&input.persona)?;
    if ctx.store.children_of_family(family_id).await?.len() >= MAX_CHILDREN_PER_FAMILY {
        return Err(DomainError::Conflict(format!(
            "a family can have at most {MAX_CHILDREN_PER_FAMILY} child profiles"
        )));
    }
    let row = ChildRow {
        id: new_id(),
        family_id: family_id.to_string(),
        display_name,
        age,
        persona: persona.as_str().to_string(),
        created_at: ctx.now(),
    };
    ctx.store.insert_child(&row).await?;
    audit_child(ctx, user_id, family_id, "child.created", &row).await;
    Ok(ChildView::from(&row))
}

pub async fn update(
    ctx: &Context,
    user_id: &str,
    family_id: &str,
    child_id: &str,
    input: ChildUpdate,
) -> DomainResult<ChildView> {
    let mut row = access::child_of_family(ctx, family_id, child_id).await?;
    if let Some(name) = &input.display_name {
        row.display_name = check_name(name)?;
    }
    if let Some(age) = input.age {
        row.age = check_age(age)?;
    }
    if let Some(persona) = &input.persona {
        row.persona = check_persona(persona)?.as_str().to_string();
    }
    ctx.store.update_child(&row).await?;
    audit_child(ctx, user_id, family_id, "child.updated", &row).await;
    Ok(ChildView::from(&row))
}

/// Deletes the profile; a browser in kid mode for this child is signed out.
pub async fn delete(ctx: &Context, user_id: &str, family_id: &str, child_id: &str) -> DomainResult<()> {
    let row = access::child_of_family(ctx, family_id, child_id).await?;
    ctx.store.end_kid_sessions_of_child(&row.id).await?;
    ctx.store.delete_child(family_id, &row.id).await?;
    audit_child(ctx, user_id, family_id, "child.deleted", &row).await;
    Ok(())
}

// The audit log names the child by id only: the name stays in the profile, and goes with it.
async fn audit_child(ctx: &Context, user_id: &str, family_id: &str, action: &str, row: &ChildRow) {
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(user_id),
            family_id: Some(family_id),
            action,
            detail: serde_json::json!({ "childId": row.id, "age": row.age, "persona": row.persona }),
            ip: None,
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(check_name("  Mia  ").ok().as_deref(), Some("Mia"));
        assert_eq!(check_name("Anna   Lena").ok().as_deref(), Some("Anna Lena"));
        assert_eq!(check_name("Zoë").ok().as_deref(), Some("Zoë"));
        assert_eq!(check_name("R2").ok().as_deref(), Some("R2"));
        let forty = "a".repeat(40);
        assert!(check_name(&forty).is_ok());
        for bad in [
            "",
            "   ",
            "12345",
            "007",
            "mia@example.com",
            "+1 555 123 4567",
            "555-1234",
            "--",
            &"a".repeat(41),
            "Mia\u{7}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn ages_and_personas_are_checked() {
        assert!(check_age(3).is_ok() && check_age(17).is_ok() && check_age(7).is_ok());
        assert!(check_age(2).is_err() && check_age(18).is_err() && check_age(-1).is_err());
        assert_eq!(check_persona("Robot").ok(), Some(Persona::Robot));
        assert!(check_persona("dragon").is_err());
    }
}
