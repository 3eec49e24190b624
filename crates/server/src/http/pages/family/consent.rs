//! Consent pages: `/family/consent` (the family's consent, giving it, cloud AI, revoking) and
//! `/consent/revoke` (the link in the "email plus" confirmation email, which works signed out). They
//! call the same `domain::consent` functions as `/api/consent`.
//!
//! The emailed link only shows what it would revoke when opened (GET): mail scanners and link
//! previews open links, so revoking takes the button on that page (POST).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{NoticeQuery, SectionLink, family_notice, family_of, require_parent, section_links};
use crate::domain::accounts::Authenticated;
use crate::domain::consent::{self, ConsentKind, ConsentStatus, GiveConsent};
use crate::domain::{Context, DomainError};
use crate::http::AppState;
use crate::http::extract::ClientIp;
use crate::http::pages::account::TokenQuery;
use crate::http::pages::{FormErrors, Layout, PageError, PageForm, PageQuery, Viewer, render, see_other};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/family/consent", get(consent_page).post(give_consent))
        .route("/family/consent/cloud-ai/revoke", post(revoke_cloud_ai))
        .route("/family/consent/revoke", get(revoke_all_form).post(revoke_all))
        .route("/consent/revoke", get(revoke_link_page).post(revoke_by_link))
}

const PAGE: &str = "/family/consent";

#[derive(Template)]
#[template(path = "family/consent.html")]
struct ConsentPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    status: ConsentStatus,
    email: String,
    email_verified: bool,
    /// When the consent in force (or the older one to renew) was given, for people.
    granted_at: Option<String>,
    /// How long after consenting the confirmation email comes, for people.
    confirmation_delay: String,
    errors: FormErrors,
    guardian_label: String,
    guardian_ticked: bool,
    cloud_ai_label: &'static str,
    cloud_ai_ticked: bool,
}

/// The cloud AI box's label: what is sent, and to whom.
pub const CLOUD_AI_LABEL: &str =
    "Allow Onda to send my child's messages (with names and personal details removed) to OpenAI or Anthropic";

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsentForm {
    /// The "I am this child's parent or legal guardian and I agree" box.
    pub guardian: String,
    /// The separate cloud AI box.
    pub cloud_ai: String,
    pub privacy_policy_version: String,
    pub terms_version: String,
}

async fn consent_page_for(
    ctx: &Context,
    viewer: &Viewer,
    auth: &Authenticated,
    notice: Option<&'static str>,
    errors: FormErrors,
    ticked: Option<&ConsentForm>,
) -> Result<ConsentPage, PageError> {
    let status = consent::status(ctx, family_of(auth)?).await?;
    let granted_at = status.granted_at.as_deref().map(human_rfc3339);
    Ok(ConsentPage {
        layout: Layout::new(ctx, viewer, "family", "Consent"),
        sections: section_links(PAGE),
        notice,
        email: auth.user.email.clone(),
        email_verified: auth.user.email_verified_at.is_some(),
        granted_at,
        confirmation_delay: human_delay(ctx.config.consent_confirmation_delay_seconds),
        errors,
        guardian_label: format!(
            "I am this child's parent or legal guardian and I agree to the privacy policy version {} and the terms version {}",
            status.privacy_policy_version, status.terms_version
        ),
        cloud_ai_label: CLOUD_AI_LABEL,
        guardian_ticked: ticked.is_some_and(|f| !f.guardian.is_empty()),
        // Unticked unless the parent ticked it: cloud AI is never chosen for them.
        cloud_ai_ticked: ticked.is_some_and(|f| !f.cloud_ai.is_empty()),
        status,
    })
}

async fn consent_page(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let page =
        consent_page_for(&ctx, &viewer, auth, family_notice(&query.notice), FormErrors::default(), None)
            .await?;
    Ok(render(StatusCode::OK, &page))
}

/// Gives consent (with cloud AI when its box is ticked), or, when consent is already in force,
/// allows cloud AI. The parent's box must be ticked for consent itself; the versions travel in the
/// form, so a policy that changed meanwhile is refused by the domain and shown again.
async fn give_consent(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<ConsentForm>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let family_id = family_of(auth)?;
    let before = consent::status(&ctx, family_id).await?;
    let cloud_ai = !form.cloud_ai.is_empty();
    let (status, errors) = if !before.coppa_consent && form.guardian.is_empty() {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            FormErrors::one(
                "guardian",
                "Tick the box to confirm that you are the child's parent or legal guardian and that you agree",
            ),
        )
    } else if before.coppa_consent && !cloud_ai {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            FormErrors::one(
                "cloudAi",
                "Tick the box to allow cloud AI. Leave this page to keep everything on this machine",
            ),
        )
    } else {
        let input = GiveConsent {
            privacy_policy_version: form.privacy_policy_version.clone(),
            terms_version: form.terms_version.clone(),
            cloud_ai,
        };
        match consent::give(&ctx, &auth.user.id, family_id, ip.as_deref(), input).await {
            Ok(_) => {
                let notice = if before.coppa_consent { "cloud-ai-allowed" } else { "consent-given" };
                return Ok(see_other(&format!("{PAGE}?notice={notice}"), None));
            }
            // The versions changed since the page was shown: the page shows the new ones.
            Err(DomainError::Invalid { message, .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, FormErrors::one("guardian", message))
            }
            Err(err) => return Err(err.into()),
        }
    };
    let page = consent_page_for(&ctx, &viewer, auth, None, errors, Some(&form)).await?;
    Ok(render(status, &page))
}

async fn revoke_cloud_ai(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    consent::revoke(&ctx, &auth.user.id, family_of(auth)?, ConsentKind::CloudAi, ip.as_deref()).await?;
    Ok(see_other(&format!("{PAGE}?notice=cloud-ai-revoked"), None))
}

#[derive(Template)]
#[template(path = "family/consent_revoke.html")]
struct RevokeAllPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    status: ConsentStatus,
}

/// Asks before revoking: revoking stops every child's chat at once.
async fn revoke_all_form(State(ctx): State<Context>, viewer: Viewer) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, "/family/consent/revoke")?;
    let page = RevokeAllPage {
        layout: Layout::new(&ctx, &viewer, "family", "Revoke consent"),
        sections: section_links(PAGE),
        notice: None,
        status: consent::status(&ctx, family_of(auth)?).await?,
    };
    Ok(render(StatusCode::OK, &page))
}

async fn revoke_all(State(ctx): State<Context>, viewer: Viewer, ip: ClientIp) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    consent::revoke(&ctx, &auth.user.id, family_of(auth)?, ConsentKind::Coppa, ip.as_deref()).await?;
    Ok(see_other(&format!("{PAGE}?notice=consent-revoked"), None))
}

// ---- the link in the confirmation email ----

/// What the page behind the emailed link shows.
enum LinkState {
    /// No token in the address.
    Incomplete,
    /// Unknown, used or expired.
    Invalid,
    /// The consent the link names is no longer active: nothing to revoke.
    AlreadyInactive,
    /// Asks before revoking.
    Confirm,
    /// Revoked.
    Done,
}

#[derive(Template)]
#[template(path = "consent/revoke_link.html")]
struct RevokeLinkPage {
    layout: Layout,
    state: LinkState,
    /// The link's token, carried by the confirm form.
    token: String,
    /// Parental consent (`true`) or only cloud AI.
    is_coppa: bool,
    granted_at: String,
    versions: String,
    /// This server requires consent before children chat.
    consent_required: bool,
    /// Where a parent manages consent: the consent page, through sign-in when signed out.
    manage_href: &'static str,
}

fn revoke_link_page_for(ctx: &Context, viewer: &Viewer, state: LinkState, is_coppa: bool) -> RevokeLinkPage {
    let title = match (&state, is_coppa) {
        (LinkState::Done, true) => "Consent revoked",
        (LinkState::Done, false) => "Cloud AI stopped",
        (LinkState::Incomplete | LinkState::Invalid, _) => "This link did not work",
        (_, true) => "Revoke your consent",
        (_, false) => "Stop cloud AI",
    };
    RevokeLinkPage {
        layout: Layout::new(ctx, viewer, "consent", title),
        state,
        token: String::new(),
        is_coppa,
        granted_at: String::new(),
        versions: String::new(),
        consent_required: ctx.config.parent_consent_required,
        manage_href: if viewer.parent().is_some() { PAGE } else { "/login?next=/family/consent" },
    }
}

/// Opening the link shows what it revokes and a button; it changes nothing by itself.
async fn revoke_link_page(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<TokenQuery>,
) -> Result<Response, PageError> {
    let token = query.token.trim().to_string();
    if token.is_empty() {
        let page = revoke_link_page_for(&ctx, &viewer, LinkState::Incomplete, true);
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    let Some(preview) = consent::preview_revoke_link(&ctx, &token).await? else {
        let page = revoke_link_page_for(&ctx, &viewer, LinkState::Invalid, true);
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    let state = if preview.active { LinkState::Confirm } else { LinkState::AlreadyInactive };
    let mut page = revoke_link_page_for(&ctx, &viewer, state, preview.kind == ConsentKind::Coppa);
    page.token = token;
    page.granted_at = consent::human_time(preview.granted_at);
    page.versions = format!(
        "privacy policy version {}, terms version {}",
        preview.privacy_policy_version, preview.terms_version
    );
    Ok(render(StatusCode::OK, &page))
}

async fn revoke_by_link(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<TokenQuery>,
) -> Result<Response, PageError> {
    let token = form.token.trim();
    if token.is_empty() {
        let page = revoke_link_page_for(&ctx, &viewer, LinkState::Incomplete, true);
        return Ok(render(StatusCode::BAD_REQUEST, &page));
    }
    match consent::revoke_by_link_from(&ctx, token, ip.as_deref()).await {
        Ok(kind) => {
            let page = revoke_link_page_for(&ctx, &viewer, LinkState::Done, kind == ConsentKind::Coppa);
            Ok(render(StatusCode::OK, &page))
        }
        Err(DomainError::Invalid { .. }) => {
            let page = revoke_link_page_for(&ctx, &viewer, LinkState::Invalid, true);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(err) => Err(err.into()),
    }
}

/// An RFC 3339 time as "21 September 2026 at 14:13 UTC".
fn human_rfc3339(value: &str) -> String {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .map_or_else(|| value.to_string(), consent::human_time)
}

/// A delay for people: "in a moment", "after about 10 minutes", "after about a day".
fn human_delay(seconds: u64) -> String {
    let about = |n: u64, one: &str, many: &str| {
        if n <= 1 { format!("after about {one}") } else { format!("after about {n} {many}") }
    };
    match seconds {
        0..=59 => "in a moment".to_string(),
        60..=3599 => about(seconds.div_ceil(60), "a minute", "minutes"),
        3600..=86_399 => about((seconds + 1800) / 3600, "an hour", "hours"),
        _ => about((seconds + 43_200) / 86_400, "a day", "days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_well() {
        assert_eq!(human_delay(0), "in a moment");
        assert_eq!(human_delay(60), "after about a minute");
        assert_eq!(human_delay(600), "after about 10 minutes");
        assert_eq!(human_delay(3600), "after about an hour");
        assert_eq!(human_delay(7200), "after about 2 hours");
        assert_eq!(human_delay(86_400), "after about a day");
        assert_eq!(human_delay(3 * 86_400), "after about 3 days");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(human_rfc3339("2026-09-21T14:13:20Z"), "21 September 2026 at 14:13 UTC");
        assert_eq!(human_rfc3339("not a time"), "not a time");
    }
}
