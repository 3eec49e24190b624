//! The demo family of `onda seed --demo` and `onda serve --demo`: a verified parent with a PIN, consent
//! given (cloud AI off) and two children, created only in a database without real families.

use super::accounts::{self, Role};
use super::consent::{self, ConsentKind};
use super::{Context, DomainError, DomainResult, audit};
use crate::storage::{AuditEntry, ChildRow, NewUser, StorageError, new_id};

pub const DEMO_EMAIL: &str = "demo@onda.local";
pub const DEMO_PASSWORD: &str = "demo-password-123";
pub const DEMO_PIN: &str = "1234";
/// The demo children: name, age, persona.
pub const DEMO_CHILDREN: [(&str, i64, &str); 2] = [("Mia", 7, "raccoon"), ("Leo", 10, "robot")];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoOutcome {
    Created,
    AlreadyExists,
}

/// How to sign in to the demo family, for the command line to print.
pub fn login_instructions(base_url: &str) -> String {
    let children = DEMO_CHILDREN
        .iter()
        .map(|(name, age, persona)| format!("{name} ({age}, {persona})"))
        .collect::<Vec<_>>()
        .join(" and ");
    format!(
        "Open {base_url} and sign in as the demo parent:\n  email:    {DEMO_EMAIL}\n  password: {DEMO_PASSWORD}\n  \
         parent PIN: {DEMO_PIN}\nChildren: {children}. Consent is given (cloud AI off)."
    )
}

/// Creates the demo family. Refused (`Conflict`) when the database holds real families; when the demo
/// family exists already, nothing changes.
pub async fn seed(ctx: &Context) -> DomainResult<DemoOutcome> {
    if ctx.store.demo_family_id().await?.is_some() {
        return Ok(DemoOutcome::AlreadyExists);
    }
    if ctx.store.has_real_families().await? {
        return Err(DomainError::Conflict(
            "this database holds real families; the demo family is only created in a database without them"
                .into(),
        ));
    }
    let now = ctx.now();
    let family_id = new_id();
    let user_id = new_id();
    let password_hash = accounts::hash_secret(DEMO_PASSWORD).await?;
    let parent = NewUser {
        id: &user_id,
        family_id: Some(&family_id),
        email: DEMO_EMAIL,
        password_hash: &password_hash,
        role: Role::Parent.as_str(),
        email_verified_at: Some(now),
        created_at: now,
    };
    match ctx.store.create_family_with_parent(&family_id, true, &parent).await {
        Ok(()) => {}
        // Another process seeded it at the same moment, or the address belongs to a staff account.
        Err(StorageError::Conflict(_)) => {
            return if ctx.store.demo_family_id().await?.is_some() {
                Ok(DemoOutcome::AlreadyExists)
            } else {
                Err(DomainError::Conflict(format!("an account {DEMO_EMAIL} exists already")))
            };
        }
        Err(e) => return Err(e.into()),
    }
    ctx.store.set_pin(&family_id, &accounts::hash_secret(DEMO_PIN).await?).await?;
    consent::record(ctx, ConsentKind::Coppa, &user_id, &family_id, None, now, consent::METHOD_DEMO).await?;
    for (i, (name, age, persona)) in DEMO_CHILDREN.iter().enumerate() {
        ctx.store
            .insert_child(&ChildRow {
                id: new_id(),
                family_id: family_id.clone(),
                display_name: (*name).to_string(),
                age: *age,
                persona: (*persona).to_string(),
                // Distinct times keep the listing order stable: Mia, then Leo.
                created_at: now + i64::try_from(i).unwrap_or_default(),
            })
            .await?;
    }
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&user_id),
            family_id: Some(&family_id),
            action: "demo.seeded",
            ..Default::default()
        },
    )
    .await;
    Ok(DemoOutcome::Created)
}
