//! The family PIN and kid mode on a shared device. A parent opens a child session in this browser;
//! leaving it (or opening the dashboard) needs the PIN. Five wrong tries lock the PIN for 15 minutes.

use serde::{Deserialize, Serialize};

use super::accounts::{self, Authenticated, Role};
use super::children::ChildView;
use super::{Context, DomainError, DomainResult, access, audit, consent};
use crate::storage::AuditEntry;

pub const MAX_FAILED_ATTEMPTS: i64 = 5;
pub const LOCK_MS: i64 = 15 * 60 * 1000;

/// A new PIN; when the family already has one, the current PIN or the parent's password too.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetPin {
    pub pin: String,
    pub current_pin: Option<String>,
    pub current_password: Option<String>,
}

/// What the kid UI knows about the child whose session this browser is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KidView {
    pub child_id: String,
    pub display_name: String,
    pub age: i64,
    pub persona: String,
}

impl From<&ChildView> for KidView {
    fn from(child: &ChildView) -> Self {
        Self {
            child_id: child.id.clone(),
            display_name: child.display_name.clone(),
            age: child.age,
            persona: child.persona.clone(),
        }
    }
}

/// A PIN is 4 to 6 digits.
pub fn check_pin_format(pin: &str) -> DomainResult<&str> {
    let pin = pin.trim();
    if !(4..=6).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DomainError::invalid("pin", "a PIN is 4 to 6 digits"));
    }
    Ok(pin)
}

/// The parent's family, refusing staff accounts and browsers in kid mode.
fn parent_family(auth: &Authenticated) -> DomainResult<&str> {
    if auth.session.kid_child_id.is_some() {
        return Err(DomainError::Forbidden("kid mode is on: enter the parent PIN to leave it"));
    }
    match (auth.role, auth.user.family_id.as_deref()) {
        (Role::Parent, Some(family_id)) => Ok(family_id),
        _ => Err(DomainError::Forbidden("this is for parent accounts")),
    }
}

pub async fn has_pin(ctx: &Context, family_id: &str) -> DomainResult<bool> {
    Ok(ctx.store.pin_state(family_id).await?.pin_hash.is_some())
}

/// Sets or changes the family PIN (which clears any lockout). Changing it needs the current PIN or the
/// parent's password; the password is the way back in when the PIN is forgotten or locked.
pub async fn set(ctx: &Context, auth: &Authenticated, input: SetPin, ip: Option<&str>) -> DomainResult<()> {
    let family_id = parent_family(auth)?;
    let pin = check_pin_format(&input.pin)?.to_string();
    let existing = ctx.store.pin_state(family_id).await?.pin_hash.is_some();
    if existing {
        let password = input.current_password.as_deref().filter(|p| !p.is_empty());
        let current_pin = input.current_pin.as_deref().map(str::trim).filter(|p| !p.is_empty());
        match (password, current_pin) {
            (Some(password), _) => {
                let user = ctx.store.user_by_id(&auth.user.id).await?.ok_or(DomainError::NotFound)?;
                if !accounts::verify_secret(password, &user.password_hash).await? {
                    audit_event(ctx, &auth.user.id, family_id, "pin.change_refused", ip).await;
                    return Err(DomainError::Forbidden("the current password is wrong"));
                }
            }
            (None, Some(current_pin)) => verify(ctx, family_id, &auth.user.id, current_pin, ip).await?,
            (None, None) => {
                return Err(DomainError::invalid(
                    "currentPin",
                    "enter the current PIN (or your password) to change the PIN",
                ));
            }
        }
    }
    let hash = accounts::hash_secret(&pin).await?;
    ctx.store.set_pin(family_id, &hash).await?;
    let action = if existing { "pin.changed" } else { "pin.set" };
    audit_event(ctx, &auth.user.id, family_id, action, ip).await;
    Ok(())
}

/// Checks the family PIN. Wrong: `Forbidden` saying how many tries are left; the fifth wrong try in a
/// row locks the PIN for 15 minutes (`Locked`). Every failure is audited.
pub async fn verify(
    ctx: &Context,
    family_id: &str,
    actor_user_id: &str,
    pin: &str,
    ip: Option<&str>,
) -> DomainResult<()> {
    let pin = check_pin_format(pin)?;
    let Some(hash) = ctx.store.pin_state(family_id).await?.pin_hash else {
        return Err(DomainError::Conflict("no PIN is set yet: set one in the parent dashboard".into()));
    };
    let now = ctx.now();
    let Some(attempt) = ctx.store.reserve_pin_attempt(family_id, now).await? else {
        let until = ctx.store.pin_state(family_id).await?.pin_locked_until.unwrap_or(now + LOCK_MS);
        return Err(locked(until, now));
    };
    if attempt > MAX_FAILED_ATTEMPTS {
        // Guesses sent at the same time as the one that used the last try.
        let until = ctx.store.lock_pin(family_id, now + LOCK_MS).await?;
        return Err(locked(until, now));
    }
    if accounts::verify_secret(pin, &hash).await? {
        ctx.store.record_pin_attempt(family_id, 0, None).await?;
        return Ok(());
    }
    let remaining = MAX_FAILED_ATTEMPTS - attempt;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(actor_user_id),
            family_id: Some(family_id),
            action: "pin.failed",
            detail: serde_json::json!({ "attempt": attempt, "triesLeft": remaining, "locked": remaining == 0 }),
            ip,
        },
    )
    .await;
    if remaining <= 0 {
        let until = ctx.store.lock_pin(family_id, now + LOCK_MS).await?;
        audit_event(ctx, actor_user_id, family_id, "pin.locked", ip).await;
        return Err(locked(until, now));
    }
    Err(DomainError::Forbidden(match remaining {
        1 => "wrong PIN: 1 try left before the PIN locks for 15 minutes",
        2 => "wrong PIN: 2 tries left before the PIN locks for 15 minutes",
        3 => "wrong PIN: 3 tries left before the PIN locks for 15 minutes",
        _ => "wrong PIN: 4 tries left before the PIN locks for 15 minutes",
    }))
}

fn locked(until: i64, now: i64) -> DomainError {
    let ms = (until - now).max(1000);
    DomainError::Locked { retry_after_seconds: u64::try_from(ms).map_or(1, |ms| ms.div_ceil(1000)) }
}

/// Puts this browser into kid mode for one of the family's children. Needs a PIN (so only a parent can
/// leave) and, when the server requires it, parental consent in force.
pub async fn enter_kid_mode(ctx: &Context, auth: &Authenticated, child_id: &str) -> DomainResult<KidView> {
    let family_id = parent_family(auth)?;
    let child = access::child_of_family(ctx, family_id, child_id).await?;
    if !has_pin(ctx, family_id).await? {
        return Err(DomainError::Conflict(
            "set a parent PIN first: it is what lets only you leave kid mode".into(),
        ));
    }
    if !consent::chat_allowed(ctx, family_id).await? {
        return Err(DomainError::Forbidden(
            "give parental consent first (or renew it for the new privacy policy) before a child can chat",
        ));
    }
    ctx.store.set_session_kid_mode(&auth.token_hash, Some(&child.id)).await?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&auth.user.id),
            family_id: Some(family_id),
            action: "kid_mode.entered",
            detail: serde_json::json!({ "childId": child.id }),
            ip: None,
        },
    )
    .await;
    Ok(KidView::from(&ChildView::from(&child)))
}

/// Checks the PIN and, when this browser is in kid mode, returns it to the parent.
pub async fn leave_kid_mode(
    ctx: &Context,
    auth: &Authenticated,
    pin: &str,
    ip: Option<&str>,
) -> DomainResult<()> {
    let family_id = auth
        .user
        .family_id
        .as_deref()
        .filter(|_| auth.role == Role::Parent)
        .ok_or(DomainError::Forbidden("this is for parent accounts"))?;
    verify(ctx, family_id, &auth.user.id, pin, ip).await?;
    if let Some(child_id) = &auth.session.kid_child_id {
        ctx.store.set_session_kid_mode(&auth.token_hash, None).await?;
        audit::record(
            ctx,
            AuditEntry {
                actor_user_id: Some(&auth.user.id),
                family_id: Some(family_id),
                action: "kid_mode.left",
                detail: serde_json::json!({ "childId": child_id }),
                ip,
            },
        )
        .await;
    }
    Ok(())
}

async fn audit_event(ctx: &Context, user_id: &str, family_id: &str, action: &str, ip: Option<&str>) {
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(user_id),
            family_id: Some(family_id),
            action,
            ip,
            ..Default::default()
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_six_digits() {
        for good in ["1234", "123456", " 0000 "] {
            assert!(check_pin_format(good).is_ok(), "{good:?}");
        }
        for bad in ["123", "1234567", "12a4", "", "١٢٣٤"] {
            assert!(check_pin_format(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lock_reports_whole_seconds() {
        assert!(matches!(locked(LOCK_MS, 0), DomainError::Locked { retry_after_seconds: 900 }));
        assert!(matches!(locked(1500, 0), DomainError::Locked { retry_after_seconds: 2 }));
        assert!(matches!(locked(0, 10), DomainError::Locked { retry_after_seconds: 1 }));
    }
}
