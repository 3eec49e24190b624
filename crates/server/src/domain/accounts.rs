//! Parent sign-up, login, sessions, email verification and password reset.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::{Context, DomainError, DomainResult, audit};
use crate::providers::email::Email;
use crate::storage::{AuditEntry, NewUser, SessionRow, UserRow, new_id};

pub const SESSION_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;
/// A session's expiry slides forward at most this often, to spare the database a write per request.
pub const SESSION_TOUCH_INTERVAL_MS: i64 = 5 * 60 * 1000;
pub const VERIFY_TOKEN_LIFETIME_MS: i64 = 48 * 3600 * 1000;
pub const RESET_TOKEN_LIFETIME_MS: i64 = 3600 * 1000;
pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_CHARS: usize = 128;

pub const PURPOSE_VERIFY_EMAIL: &str = "verify_email";
pub const PURPOSE_RESET_PASSWORD: &str = "reset_password";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Parent,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Parent => "parent",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "parent" => Some(Role::Parent),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A signed-in browser session and its account.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub token_hash: String,
    pub session: SessionRow,
    pub user: UserRow,
    pub role: Role,
}

/// Hashes a password or PIN with argon2id (OWASP parameters), off the async threads.
pub async fn hash_secret(secret: &str) -> DomainResult<String> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("hashing task failed: {e}"))?
    .map_err(DomainError::Internal)
}

/// Checks a password or PIN against its argon2 hash, off the async threads.
pub async fn verify_secret(secret: &str, hash: &str) -> DomainResult<bool> {
    let secret = secret.to_owned();
    let hash = hash.to_owned();
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
    })
    .await
    .map_err(|e| DomainError::Internal(anyhow::anyhow!("verification task failed: {e}")))
}

/// A new random token for a cookie or an emailed link, and the hash under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn normalise_email(raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if !valid {
        return Err(DomainError::invalid("email", "enter an email address such as name@example.com"));
    }
    Ok(email)
}

pub fn check_password_rules(password: &str) -> DomainResult<()> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("use at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(DomainError::invalid("password", format!("use at most {PASSWORD_MAX_CHARS} characters")));
    }
    Ok(())
}

/// Creates a family and its parent account, and emails a verification link.
pub async fn sign_up(ctx: &Context, email: &str, password: &str, ip: Option<&str>) -> DomainResult<UserRow> {
    let email = normalise_email(email)?;
    check_password_rules(password)?;
    if ctx.store.user_by_email(&email).await?.is_some() {
        return Err(DomainError::Conflict(
            "an account with this email already exists; sign in instead".into(),
        ));
    }
    let password_hash = hash_secret(password).await?;
    let user_id = new_id();
    let family_id = new_id();
    let now = ctx.now();
    let new_user = NewUser {
        id: &user_id,
        family_id: Some(&family_id),
        email: &email,
        password_hash: &password_hash,
        role: Role::Parent.as_str(),
        email_verified_at: None,
        created_at: now,
    };
    match ctx.store.create_family_with_parent(&family_id, false, &new_user).await {
        Ok(()) => {}
        Err(crate::storage::StorageError::Conflict(_)) => {
            return Err(DomainError::Conflict(
                "an account with this email already exists; sign in instead".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&user_id),
            family_id: Some(&family_id),
            action: "account.signup",
            ip,
            ..Default::default()
        },
    )
    .await;
    let user = ctx.store.user_by_id(&user_id).await?.ok_or(DomainError::NotFound)?;
    send_verification_email(ctx, &user).await?;
    Ok(user)
}

pub async fn send_verification_email(ctx: &Context, user: &UserRow) -> DomainResult<()> {
    let (token, hash) = new_token();
    let now = ctx.now();
    ctx.store
        .insert_email_token(&hash, &user.id, PURPOSE_VERIFY_EMAIL, None, now, now + VERIFY_TOKEN_LIFETIME_MS)
        .await?;
    let link = format!("{}/verify-email?token={token}", ctx.base_url);
    let email = Email {
        from: ctx.config.parent_alert_from_email.clone(),
        to: user.email.clone(),
        subject: "Confirm your email for Onda".into(),
        text: format!(
            "Welcome to Onda.\n\nConfirm that this is your email address by opening this link within 48 hours:\n\n{link}\n\n\
             If you did not sign up for Onda, ignore this message.\n"
        ),
        html: format!(
            "<p>Welcome to Onda.</p><p>Confirm that this is your email address by opening this link within 48 hours:</p>\
             <p><a href=\"{link}\">Confirm my email</a></p><p>If you did not sign up for Onda, ignore this message.</p>"
        ),
    };
    ctx.mailer.send(&email).await.map_err(DomainError::Internal)
}

pub async fn verify_email(ctx: &Context, token: &str) -> DomainResult<UserRow> {
    let now = ctx.now();
    let Some(row) = ctx.store.consume_email_token(&token_hash(token), PURPOSE_VERIFY_EMAIL, now).await?
    else {
        return Err(DomainError::invalid("token", "this link is invalid or has expired; ask for a new one"));
    };
    ctx.store.set_email_verified(&row.user_id, now).await?;
    let user = ctx.store.user_by_id(&row.user_id).await?.ok_or(DomainError::NotFound)?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&user.id),
            family_id: user.family_id.as_deref(),
            action: "account.email_verified",
            ..Default::default()
        },
    )
    .await;
    Ok(user)
}

/// Checks the password and opens a session; returns the cookie token.
pub async fn log_in(
    ctx: &Context,
    email: &str,
    password: &str,
    ip: Option<&str>,
) -> DomainResult<(String, UserRow)> {
    let email = email.trim().to_lowercase();
    let user = ctx.store.user_by_email(&email).await?;
    // Hash even when there is no such account, so timing does not tell which emails exist.
    let hash = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str());
    let matches = verify_secret(password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        audit::record(
            ctx,
            AuditEntry {
                action: "account.login_failed",
                detail: serde_json::json!({ "email_domain": email.split('@').nth(1).unwrap_or_default() }),
                ip,
                ..Default::default()
            },
        )
        .await;
        return Err(DomainError::Unauthenticated);
    };
    let (token, hash) = new_token();
    let now = ctx.now();
    ctx.store.insert_session(&hash, &user.id, now, now + SESSION_LIFETIME_MS).await?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&user.id),
            family_id: user.family_id.as_deref(),
            action: "account.login",
            ip,
            ..Default::default()
        },
    )
    .await;
    Ok((token, user))
}

// An argon2id hash of a random string, checked against when the email is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Y0XcbE0nVvgOBsB6Vn9mEpl8rW3u3E0tX2Z2m8c7xsE";

/// The live session behind a cookie token, sliding its expiry forward.
pub async fn authenticate(ctx: &Context, token: &str) -> DomainResult<Authenticated> {
    let now = ctx.now();
    let hash = token_hash(token);
    let Some((session, user)) = ctx.store.session_with_user(&hash, now).await? else {
        return Err(DomainError::Unauthenticated);
    };
    if now - session.last_seen_at > SESSION_TOUCH_INTERVAL_MS {
        ctx.store.touch_session(&hash, now, now + SESSION_LIFETIME_MS).await?;
    }
    let role = Role::parse(&user.role).ok_or_else(|| anyhow::anyhow!("unknown role {:?}", user.role))?;
    Ok(Authenticated { token_hash: hash, session, user, role })
}

pub async fn log_out(ctx: &Context, auth: &Authenticated) -> DomainResult<()> {
    ctx.store.delete_session(&auth.token_hash).await?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&auth.user.id),
            family_id: auth.user.family_id.as_deref(),
            action: "account.logout",
            ..Default::default()
        },
    )
    .await;
    Ok(())
}

/// Emails a reset link when the account exists; says nothing either way, so emails cannot be probed.
pub async fn request_password_reset(ctx: &Context, email: &str, ip: Option<&str>) -> DomainResult<()> {
    let Ok(email) = normalise_email(email) else { return Ok(()) };
    let Some(user) = ctx.store.user_by_email(&email).await? else { return Ok(()) };
    let (token, hash) = new_token();
    let now = ctx.now();
    ctx.store
        .insert_email_token(&hash, &user.id, PURPOSE_RESET_PASSWORD, None, now, now + RESET_TOKEN_LIFETIME_MS)
        .await?;
    let link = format!("{}/reset-password?token={token}", ctx.base_url);
    ctx.mailer
        .send(&Email {
            from: ctx.config.parent_alert_from_email.clone(),
            to: user.email.clone(),
            subject: "Reset your Onda password".into(),
            text: format!(
                "Someone asked to reset the password of your Onda account.\n\nOpen this link within an hour to choose a new one:\n\n{link}\n\n\
                 If it was not you, ignore this message: your password stays as it is.\n"
            ),
            html: format!(
                "<p>Someone asked to reset the password of your Onda account.</p>\
                 <p><a href=\"{link}\">Choose a new password</a> (the link works for an hour).</p>\
                 <p>If it was not you, ignore this message: your password stays as it is.</p>"
            ),
        })
        .await
        .map_err(DomainError::Internal)?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&user.id),
            family_id: user.family_id.as_deref(),
            action: "account.password_reset_requested",
            ip,
            ..Default::default()
        },
    )
    .await;
    Ok(())
}

/// Sets a new password from an emailed link; every existing session ends. Following the link also
/// proves the email address, so it counts as verification.
pub async fn reset_password(
    ctx: &Context,
    token: &str,
    new_password: &str,
    ip: Option<&str>,
) -> DomainResult<()> {
    check_password_rules(new_password)?;
    let now = ctx.now();
    let Some(row) = ctx.store.consume_email_token(&token_hash(token), PURPOSE_RESET_PASSWORD, now).await?
    else {
        return Err(DomainError::invalid("token", "this link is invalid or has expired; ask for a new one"));
    };
    let hash = hash_secret(new_password).await?;
    ctx.store.set_password(&row.user_id, &hash).await?;
    ctx.store.set_email_verified(&row.user_id, now).await?;
    let user = ctx.store.user_by_id(&row.user_id).await?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&row.user_id),
            family_id: user.as_ref().and_then(|u| u.family_id.as_deref()),
            action: "account.password_reset",
            ip,
            ..Default::default()
        },
    )
    .await;
    Ok(())
}

/// Creates a moderator or administrator account (`onda admin create`).
pub async fn create_staff(ctx: &Context, email: &str, password: &str, role: Role) -> DomainResult<UserRow> {
    if role == Role::Parent {
        return Err(DomainError::invalid("role", "parents sign up through the web page"));
    }
    let email = normalise_email(email)?;
    check_password_rules(password)?;
    let hash = hash_secret(password).await?;
    let id = new_id();
    let now = ctx.now();
    ctx.store
        .create_staff_user(&NewUser {
            id: &id,
            family_id: None,
            email: &email,
            password_hash: &hash,
            role: role.as_str(),
            email_verified_at: Some(now),
            created_at: now,
        })
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::Conflict(_) => {
                DomainError::Conflict("an account with this email already exists".into())
            }
            other => other.into(),
        })?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(&id),
            action: "account.staff_created",
            detail: serde_json::json!({ "role": role.as_str() }),
            ..Default::default()
        },
    )
    .await;
    ctx.store.user_by_id(&id).await?.ok_or(DomainError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalise_email("  Ana@Example.COM ").ok().as_deref(), Some("ana@example.com"));
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com"] {
            assert!(normalise_email(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(a, ha);
    }

    #[tokio::test]
    async fn secrets_verify_only_against_their_own_hash() {
        let hash = hash_secret("correct horse battery").await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret("correct horse battery", &hash).await.expect("verify"));
        assert!(!verify_secret("wrong horse battery", &hash).await.expect("verify"));
        assert!(!verify_secret("anything", DUMMY_HASH).await.expect("verify"));
    }
}
