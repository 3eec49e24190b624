//! Verifiable parental consent, COPPA's "email plus" method: a parent whose email address is verified
//! consents in the app, and a confirmation email follows after a delay with a link that revokes it.
//!
//! Consent counts only for the privacy policy and terms versions in force: a new
//! `PRIVACY_POLICY_VERSION` or `TERMS_OF_SERVICE_VERSION` asks again. Cloud AI (sending a child's
//! messages to a third-party model provider) is a separate consent; without it a child's messages never
//! leave the machine. Revoking COPPA consent also revokes cloud AI and ends every kid-mode session of the
//! family at once.

use serde::{Deserialize, Serialize};

use super::{Context, DomainError, DomainResult, accounts, audit};
use crate::clock::rfc3339;
use crate::providers::email::Email;
use crate::storage::{AuditEntry, ConsentRow, StorageError, new_id};

/// The only method offered today: consent in the app by a parent with a verified email address,
/// then a delayed confirmation email that lets them revoke.
pub const METHOD_EMAIL_PLUS: &str = "email_plus";
/// Consent recorded by `onda seed --demo` for the demo family.
pub const METHOD_DEMO: &str = "demo";
pub const JOB_CONSENT_CONFIRMATION: &str = "consent_confirmation";
pub const PURPOSE_REVOKE_CONSENT: &str = "revoke_consent";
/// How long the revoke link in the confirmation email works.
pub const REVOKE_LINK_LIFETIME_MS: i64 = 30 * 24 * 3600 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConsentKind {
    /// Verifiable parental consent for the child to use Onda at all.
    Coppa,
    /// Consent to send the child's messages to a cloud AI provider.
    CloudAi,
}

impl ConsentKind {
    /// The value stored in `consents.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKind::Coppa => "coppa",
            ConsentKind::CloudAi => "cloud_ai",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "coppa" => Some(ConsentKind::Coppa),
            "cloud_ai" => Some(ConsentKind::CloudAi),
            _ => None,
        }
    }
}

/// A family's consent as the parent pages and `/api/consent` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentStatus {
    /// Whether this server requires consent before a child chats (`PARENT_CONSENT_REQUIRED`).
    pub required: bool,
    /// Verifiable parental consent is in force for the current policy and terms versions.
    pub coppa_consent: bool,
    /// Cloud AI may be used for this family's children.
    pub cloud_ai: bool,
    /// Whether the family's children may chat now (consent in force, or not required).
    pub chat_allowed: bool,
    /// When the family's active COPPA consent was given (RFC 3339), current or for older versions.
    pub granted_at: Option<String>,
    /// How it was given (`email_plus`).
    pub method: Option<String>,
    /// The privacy policy version a parent must accept now.
    pub privacy_policy_version: String,
    /// The terms of service version a parent must accept now.
    pub terms_version: String,
    /// The parent consented to older versions: they must read and accept the new ones.
    pub needs_renewal: bool,
    /// The "email plus" confirmation of the active consent has been sent.
    pub confirmation_sent: bool,
}

/// What a parent accepts on the consent page.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GiveConsent {
    pub privacy_policy_version: String,
    pub terms_version: String,
    /// Also allow cloud AI. `false` revokes an existing cloud AI consent.
    pub cloud_ai: bool,
}

fn is_current(ctx: &Context, consent: &ConsentRow) -> bool {
    consent.privacy_policy_version == ctx.config.privacy_policy_version
        && consent.terms_version == ctx.config.terms_of_service_version
}

pub async fn status(ctx: &Context, family_id: &str) -> DomainResult<ConsentStatus> {
    let active = ctx.store.active_consents(family_id).await?;
    let coppa = active.iter().find(|c| c.kind == ConsentKind::Coppa.as_str());
    let coppa_current = coppa.is_some_and(|c| is_current(ctx, c));
    let cloud_current = active.iter().any(|c| c.kind == ConsentKind::CloudAi.as_str() && is_current(ctx, c));
    let required = ctx.config.parent_consent_required;
    let chat_allowed = coppa_current || !required;
    Ok(ConsentStatus {
        required,
        coppa_consent: coppa_current,
        cloud_ai: cloud_current && chat_allowed,
        chat_allowed,
        granted_at: coppa.map(|c| rfc3339(c.granted_at)),
        method: coppa.map(|c| c.method.clone()),
        privacy_policy_version: ctx.config.privacy_policy_version.clone(),
        terms_version: ctx.config.terms_of_service_version.clone(),
        needs_renewal: coppa.is_some() && !coppa_current,
        confirmation_sent: coppa.is_some_and(|c| c.confirmation_sent_at.is_some()),
    })
}

/// Whether the family's children may chat: consent is in force, or this server does not require it.
pub async fn chat_allowed(ctx: &Context, family_id: &str) -> DomainResult<bool> {
    Ok(status(ctx, family_id).await?.chat_allowed)
}

/// Whether a child's messages may go to a cloud AI provider. Without this, they stay on the machine.
pub async fn cloud_ai_allowed(ctx: &Context, family_id: &str) -> DomainResult<bool> {
    Ok(status(ctx, family_id).await?.cloud_ai)
}

/// Records the verified parent's consent (and, separately, consent to cloud AI) and schedules the
/// "email plus" confirmation. Giving the same consent again changes nothing.
pub async fn give(
    ctx: &Context,
    user_id: &str,
    family_id: &str,
    ip: Option<&str>,
    input: GiveConsent,
) -> DomainResult<ConsentStatus> {
    let user = ctx.store.user_by_id(user_id).await?.ok_or(DomainError::NotFound)?;
    if user.family_id.as_deref() != Some(family_id) {
        return Err(DomainError::NotFound);
    }
    if user.email_verified_at.is_none() {
        return Err(DomainError::Forbidden(
            "verify your email first: consent can only come from a parent whose email address is confirmed",
        ));
    }
    if input.privacy_policy_version.trim() != ctx.config.privacy_policy_version {
        return Err(DomainError::invalid(
            "privacyPolicyVersion",
            format!(
                "the privacy policy in force is version {}; read it and accept that version",
                ctx.config.privacy_policy_version
            ),
        ));
    }
    if input.terms_version.trim() != ctx.config.terms_of_service_version {
        return Err(DomainError::invalid(
            "termsVersion",
            format!(
                "the terms of service in force are version {}; read them and accept that version",
                ctx.config.terms_of_service_version
            ),
        ));
    }

    let now = ctx.now();
    let active = ctx.store.active_consents(family_id).await?;
    let has_current =
        |kind: ConsentKind| active.iter().any(|c| c.kind == kind.as_str() && is_current(ctx, c));

    let new_coppa = if has_current(ConsentKind::Coppa) {
        None
    } else {
        record(ctx, ConsentKind::Coppa, user_id, family_id, ip, now, METHOD_EMAIL_PLUS).await?
    };
    let new_cloud = if !input.cloud_ai || has_current(ConsentKind::CloudAi) {
        None
    } else {
        record(ctx, ConsentKind::CloudAi, user_id, family_id, ip, now, METHOD_EMAIL_PLUS).await?
    };
    if !input.cloud_ai && ctx.store.revoke_consents(family_id, ConsentKind::CloudAi.as_str(), now).await? > 0
    {
        audit_revoked(ctx, Some(user_id), family_id, ConsentKind::CloudAi, ip, "parent", 0).await;
    }

    // One confirmation email per consent given: it names what was consented to and carries the links
    // that revoke it. When both are given together, one email covers both.
    let (subject, extra) = match (&new_coppa, &new_cloud) {
        (Some(coppa), cloud) => (Some(coppa), cloud.as_ref()),
        (None, Some(cloud)) => (Some(cloud), None),
        (None, None) => (None, None),
    };
    if let Some(subject) = subject {
        let mut payload = serde_json::json!({ "consent_id": subject.id });
        if let Some(extra) = extra {
            payload["cloud_ai_consent_id"] = extra.id.clone().into();
        }
        let delay_ms = i64::try_from(ctx.config.consent_confirmation_delay_seconds)
            .unwrap_or(i64::MAX / 2_000)
            .saturating_mul(1000);
        ctx.store.enqueue_job(JOB_CONSENT_CONFIRMATION, &payload, now.saturating_add(delay_ms), now).await?;
    }
    for consent in [&new_coppa, &new_cloud].into_iter().flatten() {
        audit::record(
            ctx,
            AuditEntry {
                actor_user_id: Some(user_id),
                family_id: Some(family_id),
                action: "consent.given",
                detail: serde_json::json!({
                    "kind": consent.kind,
                    "consentId": consent.id,
                    "method": consent.method,
                    "privacyPolicyVersion": consent.privacy_policy_version,
                    "termsVersion": consent.terms_version,
                }),
                ip,
            },
        )
        .await;
    }
    status(ctx, family_id).await
}

/// Inserts a consent for the current versions, superseding an older active one of the same kind.
/// Returns `None` when a simultaneous request recorded it first.
pub(crate) async fn record(
    ctx: &Context,
    kind: ConsentKind,
    user_id: &str,
    family_id: &str,
    ip: Option<&str>,
    now: i64,
    method: &str,
) -> DomainResult<Option<ConsentRow>> {
    ctx.store.revoke_consents(family_id, kind.as_str(), now).await?;
    let row = ConsentRow {
        id: new_id(),
        family_id: family_id.to_string(),
        user_id: user_id.to_string(),
        kind: kind.as_str().to_string(),
        method: method.to_string(),
        granted_at: now,
        ip: ip.map(str::to_string),
        privacy_policy_version: ctx.config.privacy_policy_version.clone(),
        terms_version: ctx.config.terms_of_service_version.clone(),
        confirmation_sent_at: None,
        revoked_at: None,
    };
    match ctx.store.insert_consent(&row).await {
        Ok(()) => Ok(Some(row)),
        Err(StorageError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Revokes a consent. Revoking COPPA consent revokes cloud AI too and signs out every browser of the
/// family that is in kid mode, so chat stops at once.
pub async fn revoke(
    ctx: &Context,
    user_id: &str,
    family_id: &str,
    kind: ConsentKind,
    ip: Option<&str>,
) -> DomainResult<ConsentStatus> {
    let user = ctx.store.user_by_id(user_id).await?.ok_or(DomainError::NotFound)?;
    if user.family_id.as_deref() != Some(family_id) {
        return Err(DomainError::NotFound);
    }
    revoke_for_family(ctx, Some(user_id), family_id, kind, ip, "parent").await?;
    status(ctx, family_id).await
}

async fn revoke_for_family(
    ctx: &Context,
    actor_user_id: Option<&str>,
    family_id: &str,
    kind: ConsentKind,
    ip: Option<&str>,
    via: &str,
) -> DomainResult<()> {
    let now = ctx.now();
    match kind {
        ConsentKind::Coppa => {
            let coppa = ctx.store.revoke_consents(family_id, ConsentKind::Coppa.as_str(), now).await?;
            let cloud = ctx.store.revoke_consents(family_id, ConsentKind::CloudAi.as_str(), now).await?;
            let ended = ctx.store.end_kid_sessions_of_family(family_id).await?;
            if coppa > 0 || ended > 0 {
                audit_revoked(ctx, actor_user_id, family_id, ConsentKind::Coppa, ip, via, ended).await;
            }
            if cloud > 0 {
                audit_revoked(ctx, actor_user_id, family_id, ConsentKind::CloudAi, ip, via, 0).await;
            }
        }
        ConsentKind::CloudAi => {
            if ctx.store.revoke_consents(family_id, ConsentKind::CloudAi.as_str(), now).await? > 0 {
                audit_revoked(ctx, actor_user_id, family_id, ConsentKind::CloudAi, ip, via, 0).await;
            }
        }
    }
    Ok(())
}

async fn audit_revoked(
    ctx: &Context,
    actor_user_id: Option<&str>,
    family_id: &str,
    kind: ConsentKind,
    ip: Option<&str>,
    via: &str,
    kid_sessions_ended: u64,
) {
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id,
            family_id: Some(family_id),
            action: "consent.revoked",
            detail: serde_json::json!({
                "kind": kind.as_str(),
                "via": via,
                "kidSessionsEnded": kid_sessions_ended,
            }),
            ip,
        },
    )
    .await;
}

/// Revokes the consent named by the link in a confirmation email; returns which kind it was.
pub async fn revoke_by_link(ctx: &Context, token: &str) -> DomainResult<ConsentKind> {
    revoke_by_link_from(ctx, token, None).await
}

/// [`revoke_by_link`] with the client's address for the audit log.
pub async fn revoke_by_link_from(ctx: &Context, token: &str, ip: Option<&str>) -> DomainResult<ConsentKind> {
    let invalid =
        || DomainError::invalid("token", "this link is invalid or has expired; sign in to manage consent");
    let now = ctx.now();
    let row = ctx
        .store
        .consume_email_token(&accounts::token_hash(token.trim()), PURPOSE_REVOKE_CONSENT, now)
        .await?
        .ok_or_else(invalid)?;
    let consent_id = row.subject_id.ok_or_else(invalid)?;
    let consent = ctx.store.consent_by_id(&consent_id).await?.ok_or_else(invalid)?;
    let kind = ConsentKind::parse(&consent.kind).ok_or_else(invalid)?;
    // A consent already superseded or revoked has nothing left to revoke; the link still succeeds.
    if consent.revoked_at.is_none() {
        revoke_for_family(ctx, Some(&row.user_id), &consent.family_id, kind, ip, "email_link").await?;
    }
    Ok(kind)
}

/// What the link in a confirmation email would revoke, read without using the link up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeLinkPreview {
    pub kind: ConsentKind,
    /// The consent is still active: revoking changes something.
    pub active: bool,
    /// When the consent was given (Unix milliseconds).
    pub granted_at: i64,
    pub privacy_policy_version: String,
    pub terms_version: String,
}

/// Reads the consent a revoke link names, so the page behind the link can say what it will revoke
/// and ask before acting (mail scanners open links). `None` for a link that is unknown, used or
/// expired: [`revoke_by_link_from`] would refuse it.
pub async fn preview_revoke_link(ctx: &Context, token: &str) -> DomainResult<Option<RevokeLinkPreview>> {
    let token = token.trim();
    if token.is_empty() {
        return Ok(None);
    }
    let Some(row) =
        ctx.store.peek_email_token(&accounts::token_hash(token), PURPOSE_REVOKE_CONSENT, ctx.now()).await?
    else {
        return Ok(None);
    };
    let Some(consent_id) = row.subject_id else { return Ok(None) };
    let Some(consent) = ctx.store.consent_by_id(&consent_id).await? else { return Ok(None) };
    let Some(kind) = ConsentKind::parse(&consent.kind) else { return Ok(None) };
    Ok(Some(RevokeLinkPreview {
        kind,
        active: consent.revoked_at.is_none(),
        granted_at: consent.granted_at,
        privacy_policy_version: consent.privacy_policy_version,
        terms_version: consent.terms_version,
    }))
}

/// Sends the "email plus" confirmation for a consent (and the cloud AI consent given with it), unless
/// it has been revoked meanwhile. Run by the `consent_confirmation` job.
pub async fn send_confirmation(
    ctx: &Context,
    consent_id: &str,
    cloud_ai_consent_id: Option<&str>,
) -> DomainResult<()> {
    let Some(consent) = ctx.store.consent_by_id(consent_id).await? else {
        return Ok(()); // The family was deleted.
    };
    if consent.revoked_at.is_some() || consent.confirmation_sent_at.is_some() {
        return Ok(());
    }
    let Some(parent) = ctx.store.user_by_id(&consent.user_id).await? else { return Ok(()) };
    let cloud = match cloud_ai_consent_id {
        Some(id) => ctx.store.consent_by_id(id).await?.filter(|c| c.revoked_at.is_none()),
        None => None,
    };
    let now = ctx.now();
    let main_link = revoke_link(ctx, &consent, now).await?;
    let cloud_link = match &cloud {
        Some(c) => Some(revoke_link(ctx, c, now).await?),
        None => None,
    };
    let cloud_on = match ConsentKind::parse(&consent.kind) {
        Some(ConsentKind::CloudAi) => true,
        _ => cloud.is_some() || cloud_ai_allowed(ctx, &consent.family_id).await?,
    };
    let email = confirmation_email(ctx, &parent.email, &consent, cloud_on, &main_link, cloud_link.as_deref());
    ctx.mailer.send(&email).await.map_err(DomainError::Internal)?;
    ctx.store.mark_consent_confirmation_sent(&consent.id, now).await?;
    if let Some(c) = &cloud {
        ctx.store.mark_consent_confirmation_sent(&c.id, now).await?;
    }
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: None,
            family_id: Some(&consent.family_id),
            action: "consent.confirmation_sent",
            detail: serde_json::json!({ "consentId": consent.id, "kind": consent.kind }),
            ip: None,
        },
    )
    .await;
    Ok(())
}

/// A new one-time link that revokes this consent.
async fn revoke_link(ctx: &Context, consent: &ConsentRow, now: i64) -> DomainResult<String> {
    let (token, hash) = accounts::new_token();
    ctx.store
        .insert_email_token(
            &hash,
            &consent.user_id,
            PURPOSE_REVOKE_CONSENT,
            Some(&consent.id),
            now,
            now + REVOKE_LINK_LIFETIME_MS,
        )
        .await?;
    Ok(format!("{}/consent/revoke?token={token}", ctx.base_url))
}

fn confirmation_email(
    ctx: &Context,
    to: &str,
    consent: &ConsentRow,
    cloud_on: bool,
    revoke_link: &str,
    cloud_revoke_link: Option<&str>,
) -> Email {
    let when = human_time(consent.granted_at);
    let versions = format!(
        "privacy policy version {}, terms of service version {}",
        consent.privacy_policy_version, consent.terms_version
    );
    let is_coppa = consent.kind == ConsentKind::Coppa.as_str();
    let what = if is_coppa {
        "you gave verifiable parental consent for your children to use Onda"
    } else {
        "you allowed Onda to use cloud AI for your children's chats"
    };
    let cloud_text = if cloud_on {
        "Cloud AI: allowed. Your children's messages may be sent to the cloud AI provider this server uses, \
         to write the buddy's answers."
    } else {
        "Cloud AI: not allowed. Your children's messages stay on this server; the buddy answers with the \
         local model."
    };
    let revoke_effect = if is_coppa {
        "Revoking stops your children's chats at once (cloud AI is revoked with it)."
    } else {
        "Revoking cloud AI keeps your children's chats on this server from then on."
    };
    let mut text = format!(
        "Hello,\n\nOn {when} {what} ({versions}). Consent was given in the app, signed in as {to}.\n\n\
         {cloud_text}\n\n\
         If this was not you, or you changed your mind, revoke it with this link (it works for 30 days; \
         after that, sign in and open the consent page):\n\n{revoke_link}\n\n{revoke_effect}\n"
    );
    if let Some(link) = cloud_revoke_link {
        text.push_str(&format!("\nTo revoke only cloud AI and keep Onda on the local model:\n\n{link}\n"));
    }
    let mut html = format!(
        "<p>Hello,</p><p>On {when} {what} ({versions}). Consent was given in the app, signed in as {to}.</p>\
         <p>{cloud_text}</p>\
         <p>If this was not you, or you changed your mind, <a href=\"{revoke_link}\">revoke this consent</a> \
         (the link works for 30 days; after that, sign in and open the consent page).</p><p>{revoke_effect}</p>",
        when = escape_html(&when),
        what = escape_html(what),
        versions = escape_html(&versions),
        to = escape_html(to),
        cloud_text = escape_html(cloud_text),
        revoke_link = escape_html(revoke_link),
        revoke_effect = escape_html(revoke_effect),
    );
    if let Some(link) = cloud_revoke_link {
        html.push_str(&format!(
            "<p><a href=\"{}\">Revoke only cloud AI</a> and keep Onda on the local model.</p>",
            escape_html(link)
        ));
    }
    Email {
        from: ctx.config.parent_alert_from_email.clone(),
        to: to.to_string(),
        subject: if is_coppa {
            "Your consent for Onda: confirmation".into()
        } else {
            "Cloud AI for Onda: confirmation".into()
        },
        text,
        html,
    }
}

/// "21 September 2026 at 14:13 UTC", for emails and pages.
pub fn human_time(ms: i64) -> String {
    let format = time::macros::format_description!(
        "[day padding:none] [month repr:long] [year] at [hour]:[minute] UTC"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| rfc3339(ms))
}

fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in [ConsentKind::Coppa, ConsentKind::CloudAi] {
            assert_eq!(ConsentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ConsentKind::parse("marketing"), None);
        assert_eq!(serde_json::to_value(ConsentKind::CloudAi).expect("json"), "cloudAi");
    }

    #[test]
    fn email_times_read_well() {
        assert_eq!(human_time(1_790_000_000_000), "21 September 2026 at 14:13 UTC");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape_html("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
